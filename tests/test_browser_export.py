"""The "Your data" panel leaves no plaintext copy of a person's conversations on disk once
they delete them all: not the export handed to the page, not the file they imported."""

from __future__ import annotations

import json
from pathlib import Path

from apprunner import RunningApp
from playwright.sync_api import expect
from test_browser_pages import open_data_panel, toast

SECRET = "zebra-quartz-4471"


def _texts(*folders: Path) -> str:
    return "".join(
        p.read_text(errors="replace") for f in folders for p in f.rglob("*") if p.is_file()
    )


def test_no_plaintext_copy_outlives_delete_all(people, tmp_path):
    models = tmp_path / "models.yaml"
    models.write_text(
        "models:\n  - id: m\n    name: M\n"
        "    endpoints: [{type: openai, base_url: 'http://127.0.0.1:9/v1', model: m}]\n"
    )
    gradio, temp, data = tmp_path / "gradio", tmp_path / "tmp", tmp_path / "data"
    temp.mkdir()
    env = {"GRADIO_TEMP_DIR": str(gradio), "TMPDIR": str(temp)}
    document = tmp_path / "import" / "parlor-export-mine.json"
    document.parent.mkdir()
    document.write_text(
        json.dumps(
            {
                "format": "parlor-export",
                "version": 1,
                "conversations": [
                    {
                        "id": "b" * 32,
                        "title": "Private",
                        "model": "m",
                        "created_at": "2026-01-01T00:00:00+00:00",
                        "updated_at": "2026-01-01T00:00:00+00:00",
                        "messages": [{"role": "user", "content": f"My code is {SECRET}"}],
                    }
                ],
            }
        )
    )
    app = RunningApp(data, models=models, env=env).wait_ready()
    try:
        me = people(app.url).open()
        open_data_panel(me)
        before = me.queue()["joined"]
        me.page.locator("#your-data input[type=file]").set_input_files(document)
        me.settle(before + 1)
        expect(toast(me)).to_contain_text("Imported 1 conversation.")

        me.click_and_settle(me.page.locator("#export"))
        link = me.page.locator("#export-file a[download]")
        expect(link).to_have_count(1)
        with me.page.expect_download() as downloading:
            link.click()
        assert SECRET in Path(downloading.value.path()).read_text("utf-8")
        assert SECRET in _texts(gradio, temp, data), "the export is on the server for now"

        me.page.locator("#delete-all").click()
        me.click_and_settle(me.page.locator("#confirm-delete-all-yes"))
        expect(toast(me)).to_contain_text("Deleted 1 conversation.")
        expect(me.entries).to_have_count(0)
        assert SECRET not in _texts(gradio, temp, data), "a plaintext copy is left on disk"
    finally:
        app.stop()
