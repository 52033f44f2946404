"""The README's new client API snippets (edit, retry, branches, continue, follow) run against
the app, at their place among the README's "Use it from Python" snippets: just before
"Delete one conversation". Until they are in README.md, they live here; once pasted there,
tests/test_readme.py runs them and this file goes."""

from __future__ import annotations

from test_readme import README, python_snippets

README_TEXT = """
A conversation is a tree: editing a question or answering again adds a branch beside it and
replaces nothing. In `/conversation`, `messages` is the branch shown and `all_messages` every
branch; each message has its `parent_id` and its `siblings` (its own id and its
alternatives', oldest first):

```python
question, answer = client.predict(conversation_id, api_name="/conversation")["messages"][-2:]
client.predict(conversation_id, question["id"], "And one for a dog?", api_name="/edit")
client.predict(conversation_id, "", api_name="/retry")  # another answer beside the shown one
shown = client.predict(conversation_id, api_name="/conversation")["messages"]
print(len(shown[-2]["siblings"]), len(shown[-1]["siblings"]))  # 2 2
back = client.predict(conversation_id, question["id"], api_name="/switch_branch")
assert back["messages"][-1]["id"] == answer["id"]  # the first branch, as it was
```

An answer cut by the length limit (or stopped) can be continued, in the same message:

```python
story_id, _ = client.predict("Tell me a long story about a lighthouse.", "", "", api_name="/chat")
cut = client.predict(story_id, api_name="/conversation")["messages"][-1]
print(cut["finish_reason"], cut["continuable"])  # length True
_, story = client.predict(story_id, cut["id"], api_name="/continue")
assert story.startswith(cut["content"])  # written on, from where it stopped
```

An answer is written by the server: a client leaving stops nothing, and any client of yours
follows it, from where it has got to its end (only `/stop`, from any client, ends it early):

```python
job = client.submit("Describe the sea.", conversation_id, "", api_name="/chat")
next(job)  # the answer has started
job.cancel()  # this client goes away; the answer goes on
for _, answer in later.submit(conversation_id, api_name="/follow"):  # another device
    print(len(answer), end=" ")
full = later.predict(conversation_id, api_name="/conversation")
assert full["messages"][-1]["content"] == answer and not full["writing"]
```
"""

# The README snippet the new ones come before.
BEFORE = 'print(client.predict(conversation_id, api_name="/delete_conversation"))'


def test_the_new_snippets_run_in_their_place(app, capsys):
    snippets = python_snippets(README, "Use it from Python")
    (place,) = [i for i, code in enumerate(snippets) if code.startswith(BEFORE)]
    new = python_snippets(README_TEXT)
    assert len(new) == 3
    namespace: dict = {}
    for code in snippets[:place] + new + snippets[place:]:
        code = code.replace('"http://127.0.0.1:7860/"', repr(app.url))
        exec(compile(code, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "2 2\n" in printed, "an edit and a retry: two branches each"
    assert "length True\n" in printed
    assert "{'deleted': True}" in printed and "{'deleted': 1}" in printed
