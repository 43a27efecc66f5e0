"""Printable labels: QR codes (PNG, SVG) and PDF sheets (lot labels, farmer ID cards).

Pure rendering: callers pass the text and the URI each label encodes (see
:mod:`konbit.standards.digital_link` for lots and consignments); nothing here reads the
database, so the SMS gateway, the pages and the command line share it.
"""
