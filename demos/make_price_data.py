"""Writes the generated clothing dataset that ships in demos/data/price/.

    python demos/make_price_data.py

150 items from kerazoo.app.demos.price.synthetic_dataset (seed 0): items.csv and
images/. The price follows a known rule plus noise (see that function), so
`kerazoo demo price train --data demos/data/price/items.csv` can be checked.
`kerazoo demo price train --synthetic N` makes larger sets the same way.
"""

from pathlib import Path

from kerazoo.app.demos.price import synthetic_dataset

if __name__ == "__main__":
    path = synthetic_dataset(150, Path(__file__).parent / "data" / "price", seed=0)
    print(f"wrote {path}")
