"""One module per page: each is a function of a `Page` returning a template and its
variables."""
