"""swapwizard's front end: the Textual wizard and the typer CLI.

Nothing here imports torch, cv2 or mediapipe (an import-linter contract checks it): the wizard must
start fast over SSH. Heavy work always runs in the workspace's engine.
"""
