"""The "Your data" panel of the sidebar: sharing consent, export, import, delete all."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from .doors import OwnerOf
from .identity import Owner
from .service import ChatService, ServiceError
from .ui_share import ShareList, build_share_list

PRIVATE = {"api_visibility": "private"}


class ExportFiles:
    """The export files handed to the page, one folder per person inside Gradio's cache:
    Gradio serves them from there without a copy, `delete_cache` removes them after a while,
    and "Delete all" removes them at once (no plaintext copy outlives the conversations)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, owner: Owner) -> Path:
        return self.root / hashlib.sha256(f"export:{owner.id}".encode()).hexdigest()[:40]

    def write(self, owner: Owner, document: dict) -> Path:
        folder = self._folder(owner) / uuid.uuid4().hex  # a new address for each export
        folder.mkdir(mode=0o700, parents=True)
        path = folder / f"parlor-export-{document['exported_at'][:10]}.json"
        text = json.dumps(document, ensure_ascii=False, indent=1)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def forget(self, owner: Owner) -> None:
        shutil.rmtree(self._folder(owner), ignore_errors=True)


def imported_message(report: dict) -> str:
    """What the page says after an import: how many came, and how many could not."""
    count = report["imported"]
    said = f"Imported {count} conversation{'s' if count != 1 else ''}."
    if skipped := report.get("skipped"):
        said += f" {skipped} could not be read: {' '.join(report['reasons'][:3])}"
    return " ".join([said, *report.get("notes", [])])


@dataclass
class DataPanel:
    service: ChatService
    share: gr.Checkbox
    export: gr.Button
    export_file: gr.File
    upload: gr.File
    delete_all: gr.Button
    confirm: gr.Row
    confirm_yes: gr.Button
    confirm_no: gr.Button
    links: ShareList | None = None  # share links with Revoke (chat/ui_share.py)

    def wire(
        self,
        owner_of: OwnerOf,
        page: gr.Textbox,
        listing: Callable[[gr.Request], dict],
        reset: Callable[[], dict],
        view_outputs: list,
    ) -> None:
        """Connect the panel; `reset` empties the chat view made of `view_outputs`. Each
        event sends the page's token (`page`, see chat/doors.py) and resolves its owner with
        it first: `listing(request)` then lists that owner's conversations."""
        service = self.service

        def set_sharing(on: bool, token: str, request: gr.Request) -> None:
            service.update_settings(owner_of(request, page=token), {service.SHARE: on})
            gr.Info("Sharing with model authors is on." if on else "Sharing is off.")

        files = ExportFiles(Path(self.export_file.GRADIO_CACHE) / "parlor-exports")
        service.when_all_deleted(files.forget)

        def export(token: str, request: gr.Request):
            owner = owner_of(request, page=token)
            path = files.write(owner, service.export(owner))
            return gr.File(value=str(path), visible=True)

        def import_file(file: str | None, token: str, request: gr.Request):
            owner = owner_of(request, page=token)
            if not file:
                return {}
            # Gradio refuses an upload past the import size limit (its max_file_size)
            # before storing it; the service checks the rest.
            try:  # bytes: a zip, or JSON text (the service tells them apart)
                report = service.import_report(owner, Path(file).read_bytes())
            except ServiceError as e:
                gr.Warning(str(e))
                return {}
            finally:  # Gradio's copy of the upload: the conversations are stored now
                Path(file).unlink(missing_ok=True)
            gr.Info(imported_message(report))
            return {**listing(request), self.upload: None}

        def delete_everything(token: str, request: gr.Request):
            count = service.delete_all_conversations(owner_of(request, page=token))
            gr.Info(f"Deleted {count} conversation{'s' if count != 1 else ''}.")
            return {
                **reset(),
                **listing(request),
                self.confirm: gr.update(visible=False),
            }

        self.export.click(export, inputs=page, outputs=self.export_file, **PRIVATE)
        self.upload.upload(
            import_file,
            inputs=[self.upload, page],
            outputs=[*view_outputs, self.upload],
            **PRIVATE,
        )
        self.delete_all.click(lambda: gr.update(visible=True), outputs=self.confirm, **PRIVATE)
        self.confirm_no.click(lambda: gr.update(visible=False), outputs=self.confirm, **PRIVATE)
        self.confirm_yes.click(
            delete_everything, inputs=page, outputs=[*view_outputs, self.confirm], **PRIVATE
        )
        if service.data_sharing:
            self.share.input(set_sharing, inputs=[self.share, page], **PRIVATE)


def build_data_panel(service: ChatService) -> DataPanel:
    with gr.Accordion("Your data", open=False, elem_id="your-data") as accordion:
        share = gr.Checkbox(
            label="Share my conversations with model authors",
            info="Off unless you turn it on. See the privacy page.",
            elem_id="share",
            visible=service.data_sharing,
        )
        export = gr.Button("Export my data", size="sm", elem_id="export")
        export_file = gr.File(label="Your data", visible=False, elem_id="export-file")
        # A File drop zone, not gr.UploadButton: UploadButton.api_info builds a pydantic JSON
        # schema each time Gradio asks, and it asks for every new session (SessionState):
        # that button alone was half the ~16 ms each new visitor or API call cost.
        upload = gr.File(
            label="Import data (Parlor, HuggingChat, ChatGPT or Open WebUI export)",
            file_types=[".json", ".zip"],
            height=90,
            elem_id="import",
        )
        delete_all = gr.Button(
            "Delete all my conversations", variant="stop", size="sm", elem_id="delete-all"
        )
        with gr.Row(visible=False, elem_id="confirm-delete-all") as confirm:
            gr.Markdown("**Delete every conversation for good?**")
            yes = gr.Button(
                "Delete all", variant="stop", size="sm", elem_id="confirm-delete-all-yes"
            )
            no = gr.Button("Cancel", size="sm", elem_id="confirm-delete-all-no")
        links = build_share_list(accordion)
    return DataPanel(
        service, share, export, export_file, upload, delete_all, confirm, yes, no, links
    )
