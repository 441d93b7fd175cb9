"""The mask review (``m`` from any step): the faces the segmenter doubts most first, their mask over them.

The list comes from ``engine.segment.review`` (the same worst-first order as ``masks export --worst``
and the segment job's review sheet); the picture is the crop beside the crop with its mask drawn over
it in red where the mask says "not face" (what merging and training use). Keys:

- ``↑`` ``↓`` (PgUp, PgDn, Home, End) move between faces; ``s`` shows the other side (dst / src);
- ``a`` accept: the mask becomes a painted label (it outranks the segmenter's and is taught when it
  retrains); ``r`` reject: the segmenter's mask is no longer used for this face (the landmark hull
  is) nor taught; ``u`` clears the mark; after ``a`` or ``r`` the next face is shown;
- ``e`` writes the rejected faces with their masks to ``WS/masks_rejected_<side>/`` to paint in any
  image editor, ``i`` imports that folder back (``masks import``);
- ``t`` retrains the segmenter with the marks and painted labels and writes the masks again (the
  ``segment`` job; its progress shows here, and the list redraws when it ends).

Marks are written by the engine module in the workspace (``data_<side>/masks_marks.json``); the
screen only draws them and sends jobs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from engine.errors import UserError
from tui.widgets.job_progress import JobProgress
from tui.widgets.picture import Picture

MARK_TEXT = {"accept": "[green]✓ accept[/]", "reject": "[red]✗ reject[/]", None: ""}
#: What each mark does, said under the picture.
MARK_MEANS = {
    "accept": "accepted: this mask is a painted label now; it outranks the segmenter's and is taught when it retrains (t).",
    "reject": "rejected: merging uses the landmark hull for this face, and the segmenter does not learn it; "
              "e writes the rejected faces to paint.",
    None: "a accept (the mask is right) · r reject (it is wrong) · u clear",
}


#: The list's column heads, over ``face_line``'s columns.
LIST_HEAD = "      #  frame  doubt  hidden"


def face_line(rank: int, face: dict[str, Any]) -> str:
    """``   3     31   0.61    12%  ✓ accepted``: rank, frame, doubt (worst first), share of the hull the
    mask calls not face, mark."""
    occluded = face.get("occluded")
    hidden = f"{100 * occluded:3.0f}%" if isinstance(occluded, (int, float)) else "   ?"
    frame = face.get("frame")
    painted = face.get("painted") and face.get("mark") != "accept"  # painted in an editor: outranks a mark
    mark = "[cyan]painted[/]" if painted else MARK_TEXT.get(face.get("mark"), "")
    return f"{rank:5d}  {frame if frame is not None else '?':>5}  {face['doubt']:5.2f}  {hidden:>6}  {mark}"


class MaskReviewScreen(Screen[None]):
    DEFAULT_CSS = """
    MaskReviewScreen { padding: 0 1; }
    #review-main { height: 1fr; }
    #review-picture { width: 1fr; }
    #review-side { width: 46; }
    #review-head { height: 1; color: $text-muted; }
    #review-faces { height: 1fr; }
    #review-face { height: auto; min-height: 2; }
    #review-job { height: auto; }
    """

    TITLE_TEXT = "Mask review"
    ABOUT_TEXT = ("The segmenter's masks, worst first: accept a good one, reject a bad one; export the rejected "
                  "faces to paint their masks in an image editor, import them back and retrain the segmenter.")
    NEXT_TEXT = "Escape goes back to the step you came from; a retrained segmenter's masks show here."

    BINDINGS = [
        Binding("escape", "close", "Back", id="review-back"),
        Binding("a", "mark('accept')", "Accept", id="review-accept"),
        Binding("r", "mark('reject')", "Reject", id="review-reject"),
        Binding("u", "mark(None)", "Clear", id="review-clear"),
        Binding("s", "switch_side", "Other side", id="review-side"),
        Binding("e", "export_rejected", "Export rejected", id="review-export"),
        Binding("i", "import_painted", "Import painted", id="review-import"),
        Binding("t", "retrain", "Retrain", id="review-retrain"),
    ]

    def __init__(self, side: str = "dst") -> None:
        super().__init__()
        self.side = side
        self.faces: list[dict[str, Any]] = []
        self._stamp: tuple | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="review-title", classes="step-title")
        with Horizontal(id="review-main"):
            yield Picture(caption="", id="review-picture", classes="panel", title="face and its mask")
            with Vertical(id="review-side"):
                yield Static(LIST_HEAD, id="review-head")
                yield OptionList(id="review-faces")
        yield Static(id="review-face")
        yield JobProgress(id="review-job")
        yield Footer(compact=True, show_command_palette=False)

    @property
    def ws(self) -> Any:
        return getattr(self.app, "ws", None)

    def on_mount(self) -> None:
        self.query_one(JobProgress).idle_text = "t retrains the segmenter with your marks and writes the masks again."
        self.reload()
        self.query_one(OptionList).focus()
        self.set_interval(0.5, self.poll)

    # -- drawing ---------------------------------------------------------------------------------
    def _files_stamp(self) -> tuple:
        ws = self.ws
        if ws is None:
            return ()
        from engine.segment import store

        side_dir = ws.side_dir(self.side)
        stamps = []
        for path in (side_dir / store.MASKS / store.INDEX, side_dir / store.MARKS, side_dir / store.USER):
            try:
                stamps.append(path.stat().st_mtime_ns)
            except OSError:
                stamps.append(None)
        return (self.side, *stamps)

    def poll(self) -> None:
        """Show the latest job's progress; redraw the list when the masks, marks or labels changed."""
        board = getattr(self.app, "board", None)
        job = board.latest(*self._kinds()) if board is not None else None
        self.query_one(JobProgress).job = job
        if self._files_stamp() != self._stamp:
            self.reload()

    def reload(self, keep: bool = True) -> None:
        """Read the faces again (worst first) and redraw, keeping the face shown (``keep``) or from the top."""
        from engine.segment import review

        ws = self.ws
        options = self.query_one(OptionList)
        shown = self.current() if keep else None
        self._stamp = self._files_stamp()
        self.faces = review.faces(ws, self.side) if ws is not None else []
        options.clear_options()
        options.add_options([Option(face_line(i, face), id=face["name"]) for i, face in enumerate(self.faces, 1)])
        names = [face["name"] for face in self.faces]
        if self.faces:
            options.highlighted = names.index(shown["name"]) if shown and shown["name"] in names else 0
        self._title(review.counts(self.faces))
        self.show_face()

    def _title(self, counts: dict[str, int]) -> None:
        if not counts["faces"]:
            text = f"Mask review ({self.side}): no segmenter masks yet"
        else:
            text = (f"Mask review ({self.side}, worst first): {counts['faces']} faces, {counts['accepted']} accepted, "
                    f"{counts['rejected']} rejected, {counts['painted']} painted")
        self.query_one("#review-title", Static).update(text)

    def current(self) -> dict[str, Any] | None:
        index = self.query_one(OptionList).highlighted
        return self.faces[index] if index is not None and 0 <= index < len(self.faces) else None

    def show_face(self) -> None:
        from engine.segment import review

        picture = self.query_one(Picture)
        face = self.current()
        said = self.query_one("#review-face", Static)
        ws = self.ws
        if face is None or ws is None:
            picture.caption = (f"No segmenter masks for the {self.side} faces yet. Press t to train the segmenter "
                               f"and write them (or run: swapwizard segment WS).")
            picture.show(None)
            said.update("")
            return
        path = review.overlay(ws, self.side, face)
        picture.caption = f"cannot draw {face['file']}"
        picture.show(path)
        figures = (f"[b]frame {face['frame']}[/b] · uncertainty {face['uncertainty']:.2f} · "
                   f"agrees with the hull {face['hull_iou']:.2f} · hidden {100 * (face['occluded'] or 0):.0f}%")
        means = MARK_MEANS.get(face.get("mark"), "")
        if face.get("painted") and face.get("mark") != "accept":
            means = "painted (masks import): this label outranks the segmenter's mask and any mark."
        said.update(figures + "\n" + escape(means))

    @on(OptionList.OptionHighlighted)
    def highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self.show_face()

    # -- actions ---------------------------------------------------------------------------------
    def action_close(self) -> None:
        self.app.pop_screen()

    def action_mark(self, mark: str | None) -> None:
        from engine.segment import review

        face = self.current()
        if face is None or self.ws is None:
            return
        try:
            review.set_mark(self.ws, self.side, face["name"], mark)
        except UserError as exc:
            self.app.notify_error(exc.message, exc.hint)  # type: ignore[attr-defined]
            return
        # Redraw this face's line only (a full reload of thousands of lines is not needed for one mark).
        options = self.query_one(OptionList)
        index = options.highlighted or 0
        face["mark"] = mark
        face["painted"] = (self.ws.side_dir(self.side) / "masks_user" / f"{face['name']}.png").is_file()
        options.replace_option_prompt_at_index(index, face_line(index + 1, face))
        self._stamp = self._files_stamp()
        self._title(review.counts(self.faces))
        if mark is not None and index + 1 < len(self.faces):
            options.highlighted = index + 1
        else:
            self.show_face()

    def action_switch_side(self) -> None:
        self.side = "src" if self.side == "dst" else "dst"
        self.reload(keep=False)

    def _busy(self) -> bool:
        board = getattr(self.app, "board", None)
        job = board.active(*self._kinds()) if board is not None else None
        if job is not None:
            table = getattr(self.app, "job_table", None)
            label = table.label(job.kind) if table is not None else job.kind
            self.notify(f"{label} is still running; wait for it to end.", severity="warning", markup=False)
        return job is not None

    def _kinds(self) -> tuple[str, ...]:
        """The job kinds this view shows (declared with ``screens=("masks",)`` in engine/jobs)."""
        table = getattr(self.app, "job_table", None)
        return table.shown_on("masks") if table is not None else ()

    def _folder(self) -> str:
        return f"masks_rejected_{self.side}"

    async def action_export_rejected(self) -> None:
        if self.ws is None or self._busy():
            return
        if not any(face["mark"] == "reject" for face in self.faces):
            self.notify(f"No {self.side} face is rejected yet (r rejects one).", severity="warning")
            return
        folder = Path(self.ws.root) / self._folder()
        if await self.app.submit_job("masks_export", {"side": self.side, "folder": self._folder(),  # type: ignore[attr-defined]
                                                      "marked": "rejected"}):
            self.notify(f"Writing the rejected faces to {folder}. Paint the *_mask.png files (white = face), "
                        "then press i here to import them.", timeout=15, markup=False)

    async def action_import_painted(self) -> None:
        if self.ws is None or self._busy():
            return
        folder = Path(self.ws.root) / self._folder()
        if not folder.is_dir():
            self.notify(f"There is no {folder} yet: press e to export the rejected faces first.", severity="warning", markup=False)
            return
        if await self.app.submit_job("masks_import", {"side": self.side, "folder": self._folder()}):  # type: ignore[attr-defined]
            self.notify(f"Importing the painted masks of {folder}; press t to retrain with them.", markup=False)

    async def action_retrain(self) -> None:
        if self.ws is None or self._busy():
            return
        if await self.app.submit_job("segment", {"side": "both"}):  # type: ignore[attr-defined]
            self.notify("Retraining the segmenter with your marks; the list redraws when the masks are written.")
