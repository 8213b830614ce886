"""Our recurrent layers: LSTM (optionally with peepholes) and GRU, drop-ins for Keras.

>>> import tensorflow as tf
>>> from forecast.layers import LSTM, GRU
>>> LSTM(32, return_sequences=True)(tf.zeros((8, 24, 3))).shape
TensorShape([8, 24, 32])
"""

from forecast.layers.gru import GRU, GRUCell
from forecast.layers.lstm import LSTM, LSTMCell

__all__ = ["LSTM", "LSTMCell", "GRU", "GRUCell"]
