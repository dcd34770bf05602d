# SPDX-License-Identifier: BSD-3-Clause
"""The order of the example gallery: from first steps to advanced uses.

Referred to by name in ``conf.py`` (sphinx-gallery pickles its configuration,
so the sort key lives in an importable module).
"""

EXAMPLES = (
    # First steps: what an autoencoder does that PCA does not.
    "plot_digits_latent_space.py",
    "plot_reconstructions_vs_pca.py",
    "plot_compare.py",
    "plot_pca_start.py",
    # Everyday use: pipelines, training, files.
    "plot_pipeline_grid_search.py",
    "plot_training_curves.py",
    "plot_save_load.py",
    # Variants of the network and of the job.
    "plot_denoising.py",
    "plot_sparse_codes.py",
    "plot_convolutional.py",
    "plot_variational_samples.py",
    "plot_outlier_detection.py",
    "plot_tutorial_autoencoders.py",
    "plot_custom_modules.py",
)


class ExampleOrder:
    """Sort key for sphinx-gallery's ``within_subsection_order``.

    Parameters
    ----------
    src_dir : str
        The gallery's folder (unused: the order is by file name).
    """

    def __init__(self, src_dir: str) -> None:
        self.src_dir = src_dir

    def __call__(self, filename: str) -> int:
        """Rank ``filename``; a script missing from the list fails the build."""
        if filename not in EXAMPLES:
            raise ValueError(
                f"{filename} is not in docs/gallery_order.py; add it to EXAMPLES "
                "where it belongs between first steps and advanced uses."
            )
        return EXAMPLES.index(filename)
