"""Seeds an MLflow tracking server with Slipway's fixture world, using MLflow's own Python client.

Run by `cargo xtask services start` once MLflow answers, with the services venv's python:

    MLFLOW_TRACKING_URI=http://127.0.0.1:PORT python xtask/seed/mlflow_seed.py --model iris-random-forest

Why the Python client rather than REST calls from Rust: the Rust client's integration tests must
read what *MLflow itself* writes (LoggedModel sources `models:/m-<id>`, metric history, legacy
stages, aliases), not what our own idea of the REST API writes.

The world (deterministic apart from the ids and creation times MLflow assigns):
- experiment `slipway-fixture`;
- run `rf-train-v1`: params, `accuracy` logged at steps 0, 1, 2 (0.81, 0.89, 0.93), `f1` 0.91;
  a trivial pyfunc model registered as version 1 of the model; alias `production` and legacy stage
  `Production` on it;
- run `rf-train-v2`: `accuracy` 0.95, `f1` 0.93; registered as version 2; alias `candidate` and
  tag `validation_status=approved` on it.

Idempotent: if the model already exists with both aliases, nothing is written and the summary is
read back. A model that exists in any other shape is an error (a half-seeded or hand-edited server
would make the tests lie), with a hint to reset the MLflow state.

stdout carries exactly one JSON object (the summary); MLflow's own chatter goes to stderr.
"""

import argparse
import json
import os
import sys

# MLflow prints progress ("Successfully registered model ...") on stdout; keep stdout for data.
REAL_STDOUT = sys.stdout
sys.stdout = sys.stderr

import mlflow  # noqa: E402
import mlflow.pyfunc  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

EXPERIMENT = "slipway-fixture"
# Fixed metric timestamps (2024-06-04T10:00:00Z + step seconds) so histories compare exactly.
T0_MS = 1_717_495_200_000

VERSIONS = [
    {
        "run_name": "rf-train-v1",
        "params": {"n_estimators": "100", "max_depth": "5", "criterion": "gini"},
        # (key, value, step): accuracy has a three-step history ending at 0.93.
        "metrics": [
            ("accuracy", 0.81, 0),
            ("accuracy", 0.89, 1),
            ("accuracy", 0.93, 2),
            ("f1", 0.91, 2),
        ],
        "aliases": ["production"],
        "stage": "Production",
        "tags": {},
    },
    {
        "run_name": "rf-train-v2",
        "params": {"n_estimators": "200", "max_depth": "8", "criterion": "gini"},
        "metrics": [("accuracy", 0.95, 0), ("f1", 0.93, 0)],
        "aliases": ["candidate"],
        "stage": None,
        "tags": {"validation_status": "approved"},
    },
]


class Constant(mlflow.pyfunc.PythonModel):
    """The smallest model MLflow will log: the tests need a registered version, not predictions."""

    def predict(self, context, model_input: list[str]) -> list[int]:
        return [0 for _ in model_input]


def fail(message, hint):
    print(f"error: {message}\n\nhint: {hint}", file=sys.stderr)
    sys.exit(1)


def summary(client, name):
    model = client.get_registered_model(name)
    versions = []
    for number in sorted(
        int(v.version) for v in client.search_model_versions(f"name='{name}'")
    ):
        version = client.get_model_version(name, str(number))
        versions.append(
            {
                "version": version.version,
                "run_id": version.run_id,
                "source": version.source,
                "stage": version.current_stage,
                "aliases": sorted(version.aliases),
                "tags": dict(sorted(version.tags.items())),
            }
        )
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return {
        "model": name,
        "experiment": EXPERIMENT,
        "experiment_id": experiment.experiment_id if experiment else None,
        "aliases": dict(sorted(model.aliases.items())),
        "versions": versions,
    }


def already_seeded(client, name):
    try:
        model = client.get_registered_model(name)
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    wanted = {alias: str(i + 1) for i, v in enumerate(VERSIONS) for alias in v["aliases"]}
    if dict(model.aliases) != wanted:
        fail(
            f"model `{name}` exists but its aliases are {dict(model.aliases)}, not {wanted}",
            "it was seeded partly or edited by hand; stop the services, delete "
            "target/services/mlflow/data and run `cargo xtask services start` again",
        )
    return True


def seed(client, name):
    mlflow.set_experiment(EXPERIMENT)
    client.create_registered_model(
        name, description="Slipway fixture model (xtask/seed/mlflow_seed.py)"
    )
    for number, spec in enumerate(VERSIONS, start=1):
        with mlflow.start_run(run_name=spec["run_name"]) as run:
            mlflow.log_params(spec["params"])
            for key, value, step in spec["metrics"]:
                mlflow.log_metric(key, value, step=step, timestamp=T0_MS + step * 1000)
            mlflow.pyfunc.log_model(name="model", python_model=Constant())
        # MLflow 3: `runs:/<run>/model` resolves to the run's LoggedModel (`models:/m-<id>`).
        version = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
        if version.version != str(number):
            fail(
                f"registering run `{run.info.run_id}` gave version {version.version}, expected {number}",
                "another client is writing to this model at the same time",
            )
        for alias in spec["aliases"]:
            client.set_registered_model_alias(name, alias, version.version)
        if spec["stage"]:
            # Deprecated since MLflow 2.9, still served: the client supports resolving by stage.
            client.transition_model_version_stage(name, version.version, spec["stage"])
        for key, value in spec["tags"].items():
            client.set_model_version_tag(name, version.version, key, value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="iris-random-forest")
    args = parser.parse_args()
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        fail("MLFLOW_TRACKING_URI is not set", "point it at the tracking server to seed")
    client = MlflowClient()
    if already_seeded(client, args.model):
        print(f"mlflow_seed: model `{args.model}` is already seeded", file=sys.stderr)
    else:
        seed(client, args.model)
    json.dump(summary(client, args.model), REAL_STDOUT, sort_keys=True)
    REAL_STDOUT.write("\n")


if __name__ == "__main__":
    main()
