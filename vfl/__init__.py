"""Learning on top of the secure layers: hetero LR, split NN, FedAvg, privacy, governance, CLI."""

__all__: list[str] = []
