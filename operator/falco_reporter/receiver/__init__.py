"""The HTTP receiver: Falco/Falcosidekick POST alerts here; they become FalcoAlert objects."""
