"""The demo: synthetic lesions in the MNI152 template (from nilearn's wheel) and a small MONAI classifier.

* ``template``: the template T1, its tissue label map and brain mask as Volumes (no download);
* ``lesion``: ellipsoidal lesions in RAS mm, inserted with smooth edges;
* ``cases``: seeded cases (lesion or not, simulated acquisition);
* ``model``: the classifier's network, preprocessing, card and committed weights (``assets/``);
* ``train``: ``python -m XAIMedSlicerLib.demo.train`` retrains it;
* ``run``: ``run_demo(out_dir)`` explains a fresh case (``xaimed demo``).
"""
