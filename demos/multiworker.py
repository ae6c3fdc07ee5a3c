"""Multi-worker data-parallel training of a model made of kerazoo layers.

TensorFlow (tf.distribute.MultiWorkerMirroredStrategy): each worker runs this
script with TF_CONFIG naming the cluster and its own index. Two workers on
localhost:

    python demos/multiworker.py --workers 2        # starts both, waits, checks

or by hand, one shell per worker:

    TF_CONFIG='{"cluster": {"worker": ["localhost:12345", "localhost:12346"]},
                "task": {"type": "worker", "index": 0}}' python demos/multiworker.py --worker
    TF_CONFIG='{... "task": {"type": "worker", "index": 1}}' python demos/multiworker.py --worker

On real machines list their host:port pairs instead; every worker runs the same
script. JAX: start one process per host with `keras.distribution.initialize(
coordinator_address="host0:1234", num_processes=N, process_id=i)` then use
`keras.distribution.DataParallel()` (what `--strategy data-parallel` does on
one host).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys


def train_worker(out):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    import keras

    from kerazoo.layers import InceptionBlock, ResidualBlock

    keras.utils.set_random_seed(0)
    with strategy.scope():
        x_in = keras.Input((16, 16, 3))
        x = InceptionBlock(4, strides=2)(x_in)
        x = ResidualBlock(8)(x)
        model = keras.Model(x_in, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(x)))
        optimizer = keras.optimizers.SGD(0.05)
    rng = np.random.default_rng(0)  # every worker builds the same data; tf.data shards it
    x = rng.standard_normal((64, 16, 16, 3)).astype("float32")
    y = x.mean(axis=(1, 2, 3))[:, None]
    global_batch = 16
    data = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices((x, y)).batch(global_batch)
    )

    # Keras 3's fit() does not run under MultiWorkerMirroredStrategy
    # (keras-team/keras#20585), so this is the step fit() would run.
    @tf.function
    def train_step(batch):
        def replica_step(inputs, targets):
            with tf.GradientTape() as tape:
                loss = (
                    tf.reduce_sum(
                        keras.losses.mean_squared_error(targets, model(inputs, training=True))
                    )
                    / global_batch
                )
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        return strategy.reduce("SUM", strategy.run(replica_step, args=batch), axis=None)

    losses = []
    for _ in range(3):
        total = [float(train_step(batch)) for batch in data]
        losses.append(sum(total) / len(total))
    task = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    result = {"worker": task, "replicas": strategy.num_replicas_in_sync, "loss": losses}
    if out:
        with open(f"{out}.{task}.json", "w") as f:
            json.dump(result, f)
    print(json.dumps(result))


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def launch(workers, out, timeout=300):
    """Runs `workers` local workers; returns their results."""
    cluster = [f"localhost:{p}" for p in free_ports(workers)]
    procs = []
    for i in range(workers):
        env = dict(
            os.environ,
            KERAS_BACKEND="tensorflow",
            TF_CPP_MIN_LOG_LEVEL="2",
            TF_CONFIG=json.dumps(
                {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": i}}
            ),
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "--worker", "--out", out],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=timeout)
            if p.returncode != 0:
                raise RuntimeError(f"worker failed:\n{stderr[-2000:]}")
            results.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help="run as one worker (TF_CONFIG)")
    parser.add_argument("--workers", type=int, default=2, help="local workers to launch")
    parser.add_argument("--out", default="", help="prefix of per-worker result files")
    args = parser.parse_args()
    if args.worker:
        train_worker(args.out)
        return
    results = launch(args.workers, args.out)
    for r in results:
        print(f"worker {r['worker']}: {r['replicas']} replicas in sync, loss {r['loss']}")
    same = all(r["loss"] == results[0]["loss"] for r in results)
    print("workers agree on the loss" if same else "workers DISAGREE")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
