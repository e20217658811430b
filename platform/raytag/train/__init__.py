"""Ray Train jobs: the per-worker loops and the trainer builders."""
