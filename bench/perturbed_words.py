"""Where a perturbation's F1 drop comes from: tag accuracy on the words it changed, by role.

    python bench/perturbed_words.py ../shared/data/conll2003/test.txt conll03_bilstm@v1 \
        conll03_bilstm_clean@v1 --registry runs/registry --kind typos

For each model: the words the perturbation changed (``--rate``, ``--seed`` as in ``raytag
evaluate --perturb``), split into entity words (gold tag with a type) and others, and into
those the model's vocabulary still knows and those it does not; per group, the share tagged
right on the clean text and on the perturbed text. Plain Python, no Ray.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from raytag.corpus.schemes import split_tag  # noqa: E402
from raytag.evaluate_files import read_labelled, reader_options  # noqa: E402
from raytag.perturb import perturb  # noqa: E402
from raytag.tagger import load_tagger  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a CoNLL file (word first, NER tag last)")
    parser.add_argument("models", nargs="+", help="registry refs")
    parser.add_argument("--registry", default="runs/registry")
    parser.add_argument("--kind", default="typos")
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = read_labelled([args.data], reader_options("conll", columns="word,pos,chunk,ner", token_column="word",
                                                     tag_column="ner"))
    noisy = perturb(data.tokens, args.kind, rate=args.rate, seed=args.seed)
    for ref in args.models:
        tagger = load_tagger(ref, args.registry)
        clean_tags = [r.tags for r in tagger.predict(data.tokens)]
        noisy_tags = [r.tags for r in tagger.predict(noisy)]
        words = getattr(tagger, "words", None)
        counts: Counter[tuple[str, str, str]] = Counter()
        for sentence, changed, gold, clean, perturbed in zip(data.tokens, noisy, data.tags, clean_tags, noisy_tags):
            for word, new, tag, a, b in zip(sentence, changed, gold, clean, perturbed):
                if word == new:
                    continue
                role = "entity" if split_tag(tag)[1] is not None else "other"
                # The vocabulary's own test: it lowercases exactly when the model's lookup does.
                known = "n/a" if words is None else ("in vocabulary" if new in words else "unknown")
                counts[(role, known, "n")] += 1
                counts[(role, known, "clean")] += a == tag
                counts[(role, known, "perturbed")] += b == tag
        print(ref)
        for role, known in sorted({(r, k) for r, k, _ in counts}):
            n = counts[(role, known, "n")]
            print(f"  {role:6} {known:13} words {n:5}  right on clean {counts[(role, known, 'clean')] / n:.3f}"
                  f"  on perturbed {counts[(role, known, 'perturbed')] / n:.3f}")


if __name__ == "__main__":
    main()
