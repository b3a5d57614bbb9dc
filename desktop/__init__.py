"""The desktop window (`hearth desktop`): a Dear PyGui control panel over the
engine's gRPC API through hearth.client, holding no model. Imports only the
ground floor (hearth.*) and the generated stubs."""
