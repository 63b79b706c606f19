"""Data files in and out: every layout users bring (CSV, TSV either way round with or without a
header row, Excel .xlsx, JSON lines, fastText, one text per line; UTF-8, UTF-8 with BOM, GBK,
Big5), read with the same rules for training, evaluation and prediction, and labelled rows
written back.

- :mod:`.decoding`: encodings, detected and checked line by line.
- :mod:`.records`: cutting text into records, per format.
- :mod:`.layout`: detecting format, header row and columns; opening a file as a table.
- :mod:`.labelled`: labelled data and class-names files.
- :mod:`.texts`: texts to classify, in chunks with every column kept.
- :mod:`.excel`: .xlsx sheets in and out.
- :mod:`.output`: writing labelled rows.
"""

from newsclf.datafiles.decoding import decode_bytes, detect_encoding, read_file_text
from newsclf.datafiles.labelled import (LabelledData, LookalikeLabelsWarning,
                                        NumericLabelsWarning, read_class_names, read_labelled)
from newsclf.datafiles.layout import FORMATS, Layout, open_table
from newsclf.datafiles.texts import (column_texts, iter_input_chunks, open_texts, read_texts,
                                    text_chunks)

__all__ = ["FORMATS", "LabelledData", "Layout", "LookalikeLabelsWarning", "NumericLabelsWarning",
           "column_texts", "decode_bytes", "detect_encoding", "iter_input_chunks", "open_table",
           "open_texts", "read_class_names", "read_file_text", "read_labelled", "read_texts",
           "text_chunks"]
