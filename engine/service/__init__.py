"""The engine's use cases, each a short flow over the layers below: model
management, generation, embeddings, tokens and status. core.EngineCore
composes them; rpc/ converts to and from the wire. May import every engine
package but rpc/."""
