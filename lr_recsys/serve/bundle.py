"""What serving needs besides the network: the training feature space (id and context indices),
the rating range, item titles and the candidate generator's popularity order. Saved as
``serving.json`` next to the model weights and registered with them, so a model version and the
indices it was trained with can never be mixed up."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lr_recsys import schema
from lr_recsys.data.prepare import Prepared
from lr_recsys.features import FeatureSpace

BUNDLE = "serving.json"


@dataclass
class ServingBundle:
    """Feature space, rating range, titles and popularity order of one trained model."""

    space: FeatureSpace
    rating_min: float
    rating_max: float
    titles: dict[str, str]
    popularity: list[str]  # catalogue item ids, most interactions first

    @classmethod
    def from_prepared(cls, prepared: Prepared, space: FeatureSpace) -> ServingBundle:
        from lr_recsys.candidates import popularity

        items = prepared.items
        return cls(
            space,
            float(prepared.config.rating_min),
            float(prepared.config.rating_max),
            dict(zip(items[schema.ITEM_ID], items[schema.TITLE].astype(str), strict=True)),
            list(popularity(prepared).index),
        )

    def save(self, directory: Path) -> Path:
        path = Path(directory) / BUNDLE
        path.write_text(
            json.dumps(
                {
                    "space": self.space.to_dict(),
                    "rating_min": self.rating_min,
                    "rating_max": self.rating_max,
                    "titles": self.titles,
                    "popularity": self.popularity,
                }
            )  # fmt: skip
        )
        return path

    @classmethod
    def load(cls, directory: Path) -> ServingBundle:
        path = Path(directory) / BUNDLE
        if not path.exists():
            raise FileNotFoundError(
                f"{path} is missing: this model version was registered without its serving bundle; "
                "re-run the pipeline to register a servable version"
            )
        data = json.loads(path.read_text())
        return cls(
            FeatureSpace.from_dict(data["space"]), data["rating_min"], data["rating_max"],
            data["titles"], data["popularity"],
        )  # fmt: skip
