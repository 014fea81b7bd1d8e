"""The side-by-side reader: tf_impl and torch_impl cut into matching sections and shown
in aligned columns (terminal or one self-contained HTML page), and the mirror check
that keeps the two packages matching.

    reader.sections  the sections of both packages, paired     reader.align     line alignment
    reader.terminal  two columns in a terminal                  reader.page      the HTML page
    reader.mirror    the mirror check                           reader.cli       the command

Pure text and `ast`: neither TensorFlow nor PyTorch is imported.
"""
