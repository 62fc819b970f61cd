"""The networks and their checkpoints: the paper's ConvNet (convnet.py), models given as ONNX graphs (graph_net.py,
read by onnx_import.py), the one place a checkpoint is saved or loaded (checkpoints.py), and your own models added
beside the shipped ones (`explorer.models.own`)."""

from explorer.models.checkpoints import (
    CARD_KEYS,
    CheckpointError,
    available,
    catalogue,
    checkpoint_dir,
    convnet_from,
    dataset_of,
    graph_from,
    load,
    looks_like_pickle,
    read_card,
    read_tensors,
    refuse_pickle,
    resolve,
    save,
    user_model_dir,
)
from explorer.models.convnet import EMBEDDING_DIM, MNIST_MEAN, MNIST_STD, ConvNet
from explorer.models.graph_net import GraphError, GraphNet

__all__ = ["CARD_KEYS", "EMBEDDING_DIM", "MNIST_MEAN", "MNIST_STD", "CheckpointError", "ConvNet", "GraphError",
           "GraphNet", "available", "catalogue", "checkpoint_dir", "convnet_from", "dataset_of", "graph_from", "load",
           "looks_like_pickle", "read_card", "read_tensors", "refuse_pickle", "resolve", "save",
           "user_model_dir"]
