"""Adapters that drive a Pruner's training-loop hooks from other libraries' training loops
(import the submodule you need: ``pruner_iface.integrations.hf``)."""
