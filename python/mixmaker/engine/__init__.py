"""The one runtime that wires the user, funds and execution layers for `mixmaker run` and
`mixmaker demo`. The layers never import it (engine -> users -> funds -> execution -> core)."""
