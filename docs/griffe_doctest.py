"""A griffe extension for the API reference: docstring examples written as
Keras writes them (`>>>` lines after "Example:", unindented) are shown as
Python code. Without it they read as prose, and an output such as
`[(2, 8)]` as a broken link."""

import griffe


def fence_doctests(text):
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        if not lines[i].startswith(">>>"):
            out.append(lines[i])
            i += 1
            continue
        block = []
        while i < len(lines) and lines[i].strip():  # a doctest ends at a blank line
            block.append(lines[i])
            i += 1
        out += ["```python", *block, "```"]
    return "\n".join(out)


class DoctestAsCode(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
