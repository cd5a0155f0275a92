"""Portal views, one module per page family; all thin: parse, call a service or selector, render."""
