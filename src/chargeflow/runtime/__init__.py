"""The composition root: builds a site's system from its file for `serve` and `demo`."""
