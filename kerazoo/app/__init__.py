"""The kerazoo application: the `kerazoo` command line (`kerazoo.app.cli`),
the chapter's demos (`kerazoo.app.demos`) and the models they train
(`kerazoo.app.models`). It imports the library; the library never imports it.
"""
