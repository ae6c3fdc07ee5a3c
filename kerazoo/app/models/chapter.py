"""Builders for the chapter's architectures (sections 7.100-7.160).

Each returns an uncompiled `keras.Model`; the demos compile and train them.
The lecture's snippets have typos (`LTSM`, `Embedding(64, vocab)` with the
arguments swapped): these are what they mean.
"""

from __future__ import annotations

import keras
from keras import layers

from kerazoo.layers import InceptionBlock, ResidualBlock, SiameseEncoder


def adder(inputs=64, units=32):
    """7.110: the functional-API dense model that learns to add 64 numbers."""
    x_in = keras.Input((inputs,), name="numbers")
    x = layers.Dense(units, activation="relu", name="dense_1")(x_in)
    x = layers.Dense(units, activation="relu", name="dense_2")(x)
    return keras.Model(x_in, layers.Dense(1, name="sum")(x), name="adder")


def question_answering(text_vocab, question_vocab, answer_vocab):
    """7.120: a two-input model, text and question, one softmax answer."""
    text = keras.Input((None,), dtype="int32", name="text")
    question = keras.Input((None,), dtype="int32", name="question")
    # Embedding(input_dim=vocabulary, output_dim=size): the chapter swaps them.
    encoded_text = layers.LSTM(32, name="text_lstm")(
        layers.Embedding(text_vocab, 64, mask_zero=True, name="text_embedding")(text)
    )
    encoded_question = layers.LSTM(16, name="question_lstm")(
        layers.Embedding(question_vocab, 32, mask_zero=True, name="question_embedding")(question)
    )
    merged = layers.concatenate([encoded_text, encoded_question], axis=-1)
    answer = layers.Dense(answer_vocab, activation="softmax", name="answer")(merged)
    return keras.Model([text, question], answer, name="question_answering")


def posts(vocab_size, num_income_groups, sequence_length=None):
    """7.130: one text base, three heads: age (regression), income group
    (softmax), gender (sigmoid)."""
    post = keras.Input((sequence_length,), dtype="int32", name="post")
    x = layers.Embedding(vocab_size, 256, name="embedding")(post)
    x = layers.Conv1D(128, 5, activation="relu", padding="same", name="conv_1")(x)
    x = layers.MaxPooling1D(5, padding="same", name="pool_1")(x)
    x = layers.Conv1D(128, 5, activation="relu", padding="same", name="conv_2")(x)
    x = layers.GlobalMaxPooling1D(name="pool_2")(x)
    x = layers.Dense(128, activation="relu", name="dense")(x)
    age = layers.Dense(1, name="age")(x)
    income = layers.Dense(num_income_groups, activation="softmax", name="income")(x)
    gender = layers.Dense(1, activation="sigmoid", name="gender")(x)
    return keras.Model(post, {"age": age, "income": income, "gender": gender}, name="posts")


def sequence_similarity(steps=None, features=8, units=32, merge="abs_diff"):
    """7.150: the shared LSTM: two sequences, one encoder, a sigmoid score.

    `merge="concat"` is the chapter's; a linear head on `[e1, e2]` cannot
    compare the two encodings, so the default is the symmetric `abs_diff`.
    `merge="euclidean"` outputs the encodings' distance instead of a score.
    """
    left = keras.Input((steps, features), name="left")
    right = keras.Input((steps, features), name="right")
    # `euclidean` outputs the distance itself (trained with ContrastiveLoss):
    # no head, "same" is a distance below a threshold.
    head = None if merge == "euclidean" else layers.Dense(1, activation="sigmoid", name="same")
    siamese = SiameseEncoder(
        layers.LSTM(units, name="shared_lstm"), merge=merge, head=head, name="siamese"
    )
    return keras.Model([left, right], siamese([left, right]), name="sequence_similarity")


def small_inception(input_shape=(128, 128, 3), classes=10):
    """7.140: a small classifier built from two Inception modules."""
    x_in = keras.Input(input_shape, name="image")
    x = InceptionBlock(32, strides=2, use_batch_norm=True, name="inception_1")(x_in)
    x = InceptionBlock(64, strides=2, use_batch_norm=True, name="inception_2")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(
        x_in, layers.Dense(classes, activation="softmax", name="classes")(x), name="small_inception"
    )


def small_residual(input_shape=(128, 128, 3), classes=10):
    """7.140: a small classifier built from residual blocks (the chapter's
    three 3x3 convolutions added back to their input)."""
    x_in = keras.Input(input_shape, name="image")
    x = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu", name="stem")(x_in)
    x = ResidualBlock(name="residual_1")(x)
    x = ResidualBlock(128, strides=2, use_batch_norm=True, name="residual_2")(x)
    x = ResidualBlock(name="residual_3")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(
        x_in, layers.Dense(classes, activation="softmax", name="classes")(x), name="small_residual"
    )
