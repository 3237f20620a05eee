"""The demo's text: written for hf-embed (not taken from any book), long enough for several windows."""

SAMPLE_TEXT = """\
The lighthouse keeper counted the ships every evening, writing each name in a ledger that
smelled of salt and lamp oil. Nobody had asked him to do it. The harbour master kept better
records, and the shipping company kept better ones still, but the keeper liked the feeling of
the pen moving across the page while the beam swept the water behind him.

One winter a ship came in without a name. Its hull was painted grey, its flag was folded, and
its crew would not say where they had sailed from. The keeper wrote a blank line in his ledger
and stared at it for a long time. In the morning the ship was gone, and the blank line was
still there, as plain as a question.

He never filled it in. Years later, when the ledger was given to the town library, readers
would stop at that empty line and wonder, each of them inventing a story to fit the space.
"""
