"""Rapid (five-second) STEM tomography after Zhao et al. (Sci. Rep.): simulation, filtering, corrections.

* :mod:`.specimen`, :mod:`.simulate`: a dislocation slab and the continuous-tilt
  fast-scan acquisition (non-uniform goniometer, per-row time lag, non-white
  noise, non-uniform x shrink), the conventional reference series and the
  (noisy, averaged) filter training pairs;
* :mod:`.unet_filter`: the supervised U-Net filter on the shared training
  engine; :mod:`.noise2noise`: the same filter trained without averaged
  references (pairs of independent noisy frames of an area);
  :mod:`.classical`: scikit-image filters and optional BM3D;
* :mod:`.lines`: PSNR, relative line width and intensity (Tables 1-3);
* :mod:`.distortion`: fast-scan x-distortion calibration and correction;
* :mod:`.feature_tracks`: blob detection in every frame and linking into tracks;
  :mod:`.tilt_tracking`: frame angles from the tracks (rigid fit, re-measurement);
* :mod:`.reconstruct`: time-lag-aware (one angle per row) SIRT with
  :class:`~tomotime.physics.RowAngleProjector`;
* :mod:`.dislocations`: binarisation, line centres, Delta G between reconstructions.
"""
