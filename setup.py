"""Distribution `fusionctr`: OptFusion and ResFusion CTR models as a TFX pipeline."""
import setuptools

setuptools.setup(
    name="fusionctr",
    version="0.1.0",
    description="OptFusion and ResFusion CTR prediction as a TFX 1.16 pipeline",
    python_requires=">=3.9,<3.11",
    packages=setuptools.find_packages(include=["pipeline", "pipeline.*", "components", "components.*",
                                               "trainer", "trainer.*", "transform", "transform.*",
                                               "data_gen", "data_gen.*", "serving", "serving.*", "kubeflow",
                                               "kubeflow.*", "fusionctr"]),
    py_modules=["local_runner"],
)
