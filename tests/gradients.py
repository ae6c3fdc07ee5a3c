"""Gradients of a model's loss with respect to its trainable variables, on
whichever backend runs (Keras has no public backend-neutral gradient API)."""

import keras


def trainable_gradients(model, x, loss_fn):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn(model(x))
        return [
            keras.ops.convert_to_numpy(g) for g in tape.gradient(loss, model.trainable_variables)
        ]
    if backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def f(values):
            y, _ = model.stateless_call(values, non_trainable, x)
            return loss_fn(y)

        return [keras.ops.convert_to_numpy(g) for g in jax.grad(f)(trainable)]
    if backend == "torch":
        import torch

        variables = [v.value for v in model.trainable_variables]
        loss = loss_fn(model(x))
        return [keras.ops.convert_to_numpy(g) for g in torch.autograd.grad(loss, variables)]
    raise NotImplementedError(f"no gradient helper for backend {backend}")
