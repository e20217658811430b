"""Model registry: immutable, versioned, checksummed tagger artifacts.

Layout under the root (a local directory, or any URI pyarrow understands)::

    <root>/<name>/v<N>/manifest.json   # written last: a version exists only once it does
    <root>/<name>/v<N>/artifact/...    # model, vocab, curves, report ...
    <root>/<name>/v<N>/README.md       # the model card, rendered from the manifest and artifact
    <root>/<name>/aliases.json         # {"latest": 3, "best": 2, ...}

A plain path is a *local* root: publish stages files in ``<name>/.staging-<uuid>/`` and
claims ``v<N>`` by an atomic rename, retrying with N+1 if a concurrent publisher won;
fetch verifies the files in place.
The model card is checksummed in the manifest (``card``) like the artifact files. A URI (``s3://...``, ``gs://...``, also ``file://...``)
is *remote*: object stores cannot rename atomically, so files go straight under ``v<N>``
with the manifest last. Readers never see a partial version, but publishers racing for
one number may clobber each other, so serialise publishes of a model there. Remote
fetches land in a local cache keyed by name/version, re-verified on every call.
``aliases.json`` is replaced whole (temp file, then move), under ``flock`` on local POSIX
roots (elsewhere the last writer wins). Everything is JSON; nothing is ever pickled.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from raytag.model_card import CARD_FILE, render_card
from raytag.registry_files import (_card, _check_card, _local_files, _manifest_files, _pump, _verify_local,
                                   checksum_tree, default_cache_dir, download_verified, sha256_file)
from raytag.registry_refs import (_NAME_RE, ChecksumError, ModelNotFoundError, ModelRef, ModelVersion,
                                  RegistryError, _check_alias, _check_name, parse_ref)
from raytag.registry_store import ARTIFACT, MANIFEST, RegistryStore, _dumps

# References, file checks and storage under the root live in registry_refs, registry_files
# and registry_store; every public name stays importable from here, the registry's one entry point.
__all__ = ["ChecksumError", "ModelNotFoundError", "ModelRef", "ModelVersion", "Registry",
           "RegistryError", "checksum_tree", "parse_ref", "sha256_file"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_MAX_CLAIM_ATTEMPTS = 100


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _raytag_version() -> str:
    import raytag  # deferred: raytag/__init__ may import this module

    if isinstance(getattr(raytag, "__version__", None), str):
        return raytag.__version__
    try:
        return importlib.metadata.version("raytag")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


class Registry(RegistryStore):
    """A model registry rooted at a local directory or a pyarrow filesystem URI."""

    def __repr__(self) -> str:
        return f"Registry({self._uri!r})"

    def _not_found(self, message: str, name: str) -> ModelNotFoundError:
        versions = ", ".join(f"v{v}" for v in self._versions(name)) or "none"
        aliases = ", ".join(f"{a} -> v{v}" for a, v in sorted(self._read_aliases(name).items())) or "none"
        return ModelNotFoundError(f"{message}; available versions: {versions}; aliases: {aliases}")

    def _require_model(self, name: str) -> list[int]:
        versions = self._versions(_check_name(name, "model name"))
        if not versions:
            known = ", ".join(self.list_models()) or "none"
            raise ModelNotFoundError(f"no model named {name!r} in registry {self._uri}; available models: {known}")
        return versions

    # -- public API -------------------------------------------------------
    def list_models(self) -> list[str]:
        """Names of models with at least one published version, sorted."""
        return sorted(i.base_name for i in self._listdir(self._root) if i.type == pafs.FileType.Directory
                      and _NAME_RE.fullmatch(i.base_name) and self._versions(i.base_name))

    def list_versions(self, name: str) -> list[ModelVersion]:
        """All published versions of ``name``, oldest first."""
        return [self._load(name, v) for v in self._require_model(name)]

    def aliases(self, name: str) -> dict[str, int]:
        """``{alias: version}`` for ``name``."""
        self._require_model(name)
        return self._read_aliases(name)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` at an existing ``version`` of ``name``."""
        _check_alias(alias)
        if type(version) is not int:
            raise RegistryError(f"version must be an int, got {version!r}")
        if version not in self._require_model(name):
            raise self._not_found(f"cannot set alias {alias!r}: {name} has no version {version}", name)
        with self._alias_lock(name):
            self._write_aliases(name, {**self._read_aliases(name), alias: version})

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias``; the version it pointed at stays."""
        self._require_model(name)
        with self._alias_lock(name):
            aliases = self._read_aliases(name)
            if alias not in aliases:
                raise self._not_found(f"{name} has no alias {alias!r}", name)
            del aliases[alias]
            self._write_aliases(name, aliases)

    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """The version a reference points at; ``ModelNotFoundError`` lists what exists otherwise."""
        parsed = ref if isinstance(ref, ModelRef) else parse_ref(ref)
        versions = self._require_model(parsed.name)
        version = parsed.version
        if version is None:
            version = self._read_aliases(parsed.name).get(str(parsed.alias))
            if version is None:
                raise self._not_found(f"{parsed.name} has no alias {parsed.alias!r}", parsed.name)
        if version not in versions:
            via = f" (alias {parsed.alias!r} points at it)" if parsed.version is None else ""
            raise self._not_found(f"{parsed.name} has no version {version}{via}", parsed.name)
        return self._load(parsed.name, version)

    def publish(self, name: str, artifact_dir: str | os.PathLike[str], *, kind: str, labels: Sequence[str],
                metrics: Mapping[str, Any], config: Mapping[str, Any], data_fingerprint: str,
                aliases: Sequence[str] = ("latest",), best_metric: str | None = None,
                higher_is_better: bool = True, data: Mapping[str, Any] | None = None) -> ModelVersion:
        """Publish every file under ``artifact_dir`` as the next version of ``name``.

        ``data`` (optional) summarises the training data (splits and their sizes, inputs,
        vocabulary sizes) for the manifest and the model card written beside the artifact.

        Points ``aliases`` at the new version (``latest`` never moves backwards) and, when
        ``best_metric`` is given, moves ``best`` here if ``metrics[best_metric]`` beats the
        current best's (ties keep the incumbent). On any failure no version is visible.
        """
        _check_name(name, "model name")
        alias_list = [_check_alias(a) for a in ((aliases,) if isinstance(aliases, str) else aliases)]
        if not isinstance(kind, str) or not kind:
            raise RegistryError(f"kind must be a non-empty string, got {kind!r}")
        if not isinstance(data_fingerprint, str):
            raise RegistryError(f"data_fingerprint must be a string, got {data_fingerprint!r}")
        if isinstance(labels, str) or not all(isinstance(label, str) for label in labels):
            raise RegistryError("labels must be a sequence of strings")
        score = None
        if best_metric is not None:
            if "best" in alias_list:
                raise RegistryError("pass either best_metric or the 'best' alias, not both")
            score = metrics.get(best_metric)
            if not _is_number(score):
                raise RegistryError(f"best_metric {best_metric!r} must be a number in metrics, got {score!r}")
        try:
            files = _local_files(artifact_dir)
        except NotADirectoryError as exc:
            raise RegistryError(f"artifact_dir {os.fspath(artifact_dir)!r} is not a directory") from exc
        if not files:
            raise RegistryError(f"artifact_dir {os.fspath(artifact_dir)!r} contains no files")
        body = {
            "format": FORMAT_VERSION, "name": name, "kind": kind, "labels": list(labels),
            "metrics": dict(metrics), "config": dict(config), "data_fingerprint": data_fingerprint,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "raytag_version": _raytag_version(),
        }
        if data is not None:
            body["data"] = dict(data)
        _dumps(body, "manifest")  # fail before copying anything
        manifest = self._write_version(name, files, body)
        version = manifest["version"]
        try:
            self._update_aliases(name, version, alias_list, best_metric, score, higher_is_better)
        except BaseException:
            self._remove_dir(self._path(name, f"v{version}"))
            raise
        return ModelVersion(name, version, manifest, self._uri_of(name, version))

    def _write_version(self, name: str, files: Mapping[str, Path], body: dict[str, Any]) -> dict[str, Any]:
        version = max(self._version_dirs(name), default=0) + 1
        work = self._path(name, f".staging-{uuid.uuid4().hex}" if self._local else f"v{version}")
        try:
            entries = {}
            for rel, src in files.items():
                with open(src, "rb") as fin, self._open_output(f"{work}/{ARTIFACT}/{rel}") as fout:
                    sha, size = _pump(fin, fout)
                entries[rel] = {"sha256": sha, "size": size}
            for _ in range(_MAX_CLAIM_ATTEMPTS):
                manifest = {**body, "version": version, "files": entries}
                # Rendered per attempt: the card names the version number this attempt claims.
                card = self._render_card(manifest, files)
                with self._open_output(f"{work}/{CARD_FILE}") as out:
                    out.write(card)
                manifest["card"] = {"path": CARD_FILE, "sha256": hashlib.sha256(card).hexdigest(), "size": len(card)}
                with self._open_output(f"{work}/{MANIFEST}") as out:
                    out.write(_dumps(manifest, "manifest"))
                if not self._local:
                    return manifest
                try:
                    os.rename(work, self._path(name, f"v{version}"))
                    return manifest
                except OSError as exc:  # another publisher claimed v<N> first
                    if not isinstance(exc, FileExistsError) and exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
                version = max(version + 1, max(self._version_dirs(name), default=0) + 1)
            raise RegistryError(f"could not claim a version number for {name} after {_MAX_CLAIM_ATTEMPTS} attempts")
        except BaseException:
            self._remove_dir(work)
            raise

    def _render_card(self, manifest: dict[str, Any], files: Mapping[str, Path]) -> bytes:
        try:
            return render_card(manifest, files, self._uri).encode()
        except Exception:  # noqa: BLE001 - a card must never cost a trained model its registration
            log.exception("could not render the model card of %s@v%s; writing a minimal one",
                          manifest["name"], manifest["version"])
            return (f"# {manifest['name']} v{manifest['version']}\n\nkind: {manifest['kind']}\n\nlabels: "
                    f"{', '.join(manifest['labels'])}\n\nmetrics: {json.dumps(manifest['metrics'])}\n").encode()

    def card(self, ref: str | ModelRef) -> str:
        """The model card (Markdown) of ``ref``, checked against the manifest's checksum."""
        mv = self.resolve(ref)
        card = _card(mv.manifest, mv.ref)
        if card is None:
            raise ModelNotFoundError(f"{mv.ref} was published without a model card")
        path = self._path(mv.name, f"v{mv.version}", CARD_FILE)
        data = None
        if self._exists(path):
            with self._fs.open_input_stream(path) as fh:
                data = fh.read()
        _check_card(card, data, mv.ref)
        return data.decode("utf-8")

    def _update_aliases(self, name: str, version: int, alias_list: list[str], best_metric: str | None,
                        score: Any, higher_is_better: bool) -> None:
        if not alias_list and best_metric is None:
            return
        with self._alias_lock(name):
            current = self._read_aliases(name)
            updated = dict(current)
            for alias in alias_list:
                # Concurrent publishers can reach this point out of order; 'latest' must not regress.
                if not (alias == "latest" and current.get("latest", 0) > version):
                    updated[alias] = version
            if best_metric is not None and self._beats(name, current.get("best"), best_metric, score, higher_is_better):
                updated["best"] = version
            if updated != current:
                self._write_aliases(name, updated)

    def _beats(self, name: str, best: int | None, metric: str, score: float, higher_is_better: bool) -> bool:
        if best is None or best not in self._versions(name):
            return True
        incumbent = self._load(name, best).metrics.get(metric)
        if not _is_number(incumbent):
            return True
        return score > incumbent if higher_is_better else score < incumbent

    def fetch(self, ref: str | ModelRef, cache_dir: str | os.PathLike[str] | None = None) -> Path:
        """A local directory with the artifact files of ``ref``, verified against the manifest.

        Local roots are verified and returned in place. Remote roots are downloaded into
        ``<cache_dir>/<name>/v<N>`` (default: a per-root directory under the user cache);
        a cached copy is re-verified and downloaded again if it no longer matches.
        Raises ``ChecksumError`` naming the first changed, missing or unexpected file.
        """
        mv = self.resolve(ref)
        expected = _manifest_files(mv.manifest, mv.ref)
        if self._local:
            artifact = Path(self._root, mv.name, f"v{mv.version}", ARTIFACT)
            _verify_local(artifact, expected, mv.ref)
            card = _card(mv.manifest, mv.ref)
            if card is not None:
                path = artifact.parent / CARD_FILE
                _check_card(card, path.read_bytes() if path.is_file() else None, mv.ref)
            return artifact
        target = Path(cache_dir if cache_dir is not None else default_cache_dir(self._uri)).expanduser()
        return download_verified(self._fs, self._path(mv.name, f"v{mv.version}", ARTIFACT), expected,
                                 target / mv.name / f"v{mv.version}", mv.ref, mv.uri)
