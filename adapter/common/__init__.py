"""What every API family shares: the error builder (one body shape per
family), SSE and collected answers, and text checks. Imports only the ground
floor (hearth.client) and the generated stubs."""
