"""The site's measuring devices as its file names them (``meters:``): adapters behind one small interface."""
