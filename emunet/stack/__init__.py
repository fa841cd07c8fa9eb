"""One module per layer of an emulated host: a plain class (logic, explicit ``now``) plus the small
trio task that drives it (see DESIGN.md sections 1 and 2)."""
