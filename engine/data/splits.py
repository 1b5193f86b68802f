"""Fixed class lists: CIFAR-100's fine class names and the standard CIFAR-FS 64/16/20 class split."""

from __future__ import annotations

#: The 100 CIFAR-100 fine class names in label order (alphabetical, as torchvision and keras).
CIFAR100_CLASSES: tuple[str, ...] = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)

#: CIFAR-FS (Bertinetto et al., ICLR 2019): 64 meta-train classes.
CIFAR_FS_TRAIN: tuple[str, ...] = (
    "dolphin", "seal", "aquarium_fish", "ray", "trout", "orchid", "sunflower", "tulip", "bottle", "bowl",
    "can", "cup", "plate", "apple", "mushroom", "orange", "pear", "clock", "keyboard", "chair",
    "couch", "bee", "caterpillar", "cockroach", "bear", "lion", "tiger", "wolf", "bridge", "castle",
    "house", "road", "skyscraper", "cloud", "forest", "mountain", "elephant", "kangaroo", "porcupine", "possum",
    "raccoon", "skunk", "lobster", "spider", "boy", "girl", "dinosaur", "lizard", "snake", "turtle",
    "hamster", "mouse", "rabbit", "shrew", "squirrel", "oak_tree", "palm_tree", "pine_tree", "willow_tree", "bus",
    "train", "lawn_mower", "streetcar", "tank",
)

#: CIFAR-FS: 16 meta-validation classes.
CIFAR_FS_VAL: tuple[str, ...] = (
    "beaver", "otter", "flatfish", "shark", "lamp", "television", "beetle", "butterfly", "sea", "camel",
    "cattle", "crab", "crocodile", "maple_tree", "motorcycle", "tractor",
)

#: CIFAR-FS: 20 meta-test classes.
CIFAR_FS_TEST: tuple[str, ...] = (
    "whale", "poppy", "rose", "sweet_pepper", "telephone", "bed", "table", "wardrobe", "leopard", "plain",
    "chimpanzee", "fox", "snail", "worm", "baby", "man", "woman", "bicycle", "pickup_truck", "rocket",
)

CIFAR_FS_SPLIT: dict[str, tuple[str, ...]] = {"train": CIFAR_FS_TRAIN, "val": CIFAR_FS_VAL, "test": CIFAR_FS_TEST}


def split_indices(class_names: list[str], split: dict[str, tuple[str, ...]]) -> dict[str, list[int]]:
    """Map a split given by class names to sorted class indices into ``class_names``."""
    where = {name: i for i, name in enumerate(class_names)}
    return {part: sorted(where[name] for name in names) for part, names in split.items()}


def contiguous_split(n_train: int, n_val: int, n_test: int) -> dict[str, list[int]]:
    """Classes 0..n_train-1 for meta-train, the next n_val for meta-val, the last n_test for meta-test."""
    return {
        "train": list(range(n_train)),
        "val": list(range(n_train, n_train + n_val)),
        "test": list(range(n_train + n_val, n_train + n_val + n_test)),
    }
