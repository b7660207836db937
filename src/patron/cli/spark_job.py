"""The `patron` command as a Spark application, for ``spark-submit``.

    spark-submit --master yarn --archives patron-env.tar.gz#env \\
        --conf spark.pyspark.python=./env/bin/python \\
        --jars "$(python -c 'from splink.backends.spark import similarity_jar_location as j; print(j())')" \\
        "$(python -c 'import patron.cli.spark_job as j; print(j.__file__)')" \\
        profiles build --store /mnt/lake

spark-submit starts the JVM with the cluster's settings (master, memory, jars); the
Spark store then finds that session instead of starting its own (store/spark.py). The
backend is Spark unless ``PATRON_BACKEND`` says otherwise. docs/spark.md has the
whole recipe.
"""

from __future__ import annotations

import os

from patron.cli.main import main

if __name__ == "__main__":
    os.environ.setdefault("PATRON_BACKEND", "spark")
    main()
