"""The order path, in the order an order takes it: `rules` (what an order must be, pure), the
`gateway` (the one path every order takes: checks, then the journal), the `journal` (the append
script, the records of orders not recorded yet, the engine's replies) and `progress` (how the
engine's events move an order through its statuses; the recorder uses it too). `refresh` and
`coalesce` keep the path off the database and batch its Redis calls."""
