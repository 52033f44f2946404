"""How a message is shown: remote images become links (a steered model cannot make the
browser fetch an address by showing an answer), code stays as written."""

from __future__ import annotations

import pytest

from chat.doors import inert_images, render_answer

DOT = "data:image/gif;base64,R0lGODlhAQABAAAAACw="


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        (
            "![](https://x.example/?q=secret)",
            "[https://x.example/?q=secret](https://x.example/?q=secret)",
        ),
        (
            'see ![a chart](https://x.example/c.png "t") here',
            "see [a chart](https://x.example/c.png) here",
        ),
        ("![a [b] c](https://x.example/n.png)", "[a [b] c](https://x.example/n.png)"),
        ("![x](<https://x.example/a b.png>)", "[x](<https://x.example/a b.png>)"),
        ("![x](https://x.example/a_(1).png)", "[x](https://x.example/a_(1).png)"),
        ("![](//x.example/p.png)", "[//x.example/p.png](//x.example/p.png)"),
        ("![logout](/logout)", "[logout](/logout)"),  # Parlor's own GETs are links too
        (
            "![](https://x.example/a_b.png)",
            r"[https://x.example/a\_b.png](https://x.example/a_b.png)",
        ),
        (
            "![chart][r]\n\n[r]: https://x.example/r.png",
            "[chart][r]\n\n[r]: https://x.example/r.png",
        ),
        ("![][r]", "[r][r]"),
        ("![r]\n\n[r]: https://x.example/r.png", "[r]\n\n[r]: https://x.example/r.png"),
        (
            "<img src=https://x.example/a.png alt='diagram'>",
            '<a href="https://x.example/a.png">diagram</a>',
        ),
        (
            '<IMG/SRC="https://x.example/y" alt=a&amp;b>',
            '<a href="https://x.example/y">a&amp;b</a>',
        ),
        (
            '<img src="data:image/png;base64,AA" srcset="https://x.example/2.png 2x">',
            '<a href="https://x.example/2.png">https://x.example/2.png</a>',
        ),
        (
            '<img src="https://x.example/a.png" onerror="alert(1)"',
            '<a href="https://x.example/a.png">https://x.example/a.png</a>',
        ),
        ("<img>", ""),
    ],
)
def test_remote_images_become_links(shown, expected):
    assert inert_images(shown) == expected


@pytest.mark.parametrize(
    "kept",
    [
        "no image here, a [link](https://x.example) and 3 < 4",
        f"![dot]({DOT})",
        "![b](blob:https://parlor.example/1)",
        f'<img src="{DOT}" alt="dot">',
        r"\![escaped](https://x.example)",  # an exclamation mark, then a link
        "```\n![code](https://x.example)\n<img src=https://x.example>\n```",
        "~~~md\n![code](https://x.example)\n~~~",
        "```python\nan answer still streaming ![a](https://x.example)",
        "`![inline](https://x.example)` and ``<img src=x>``",
        "<imgur-like tag> stays",
    ],
)
def test_what_is_not_a_remote_image_is_left_as_written(kept):
    assert inert_images(kept) == kept


def test_code_is_kept_and_the_prose_around_it_is_not():
    text = "```\n![code](https://x.example)\n```\nafter ![x](https://y.example)"
    assert (
        inert_images(text) == "```\n![code](https://x.example)\n```\nafter [x](https://y.example)"
    )


def test_the_notice_still_follows_the_answer():
    shown = render_answer("![](https://x.example/p)", "Stopped.")
    assert shown == "[https://x.example/p](https://x.example/p)\n\n*■ Stopped.*"
