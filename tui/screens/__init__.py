"""The wizard's screens: one per step, plus its modal dialogs, one per file."""
