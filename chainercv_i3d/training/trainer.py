"""A training run: set-up checks, the update loop, snapshots and resume.

Written as one explicit loop rather than Chainer's ``Trainer`` because its
schedule extensions, iterators and ChainerMN's optimizer do not resume
exactly (measured with chainer 7.8.1; see the issue "Training and
fine-tuning"): here the learning rate, the examples and every random draw of
update ``i`` are pure functions of ``(seed, i)``, and the snapshot holds the
weights, the running statistics (averaged over ranks), the optimizer state
and the iteration.
"""

import os
import time

import chainer
import chainer.functions as F
import numpy

from chainercv_i3d.datasets.loader import ExampleLoader
from chainercv_i3d.datasets.loader import TrainingClips
from chainercv_i3d.datasets.loader import start_method
from chainercv_i3d.datasets.precomputed_dataset import PrecomputedVideoDataset
from chainercv_i3d.evaluations.metrics import validation_loss
from chainercv_i3d.evaluations.multilabel import multilabel_scores
from chainercv_i3d.evaluations.multilabel import sigmoid_cross_entropy
from chainercv_i3d.evaluations.video_evaluation import check_labels
from chainercv_i3d.evaluations.video_evaluation import evaluate_ranks
from chainercv_i3d.evaluations.video_evaluation import EvalProtocol
from chainercv_i3d.evaluations.video_evaluation import preset_differences
from chainercv_i3d.evaluations.video_evaluation import summarize
from chainercv_i3d.files import check_output_dir
from chainercv_i3d.files import remove_temporaries
from chainercv_i3d.training.batches import BatchPlan
from chainercv_i3d.training.config import check_clip_fits_head
from chainercv_i3d.training.config import resolve_defaults
from chainercv_i3d.training.config import training_sampler
from chainercv_i3d.training.model_setup import average_batch_norm_statistics
from chainercv_i3d.training.model_setup import build_model
from chainercv_i3d.training.model_setup import check_trainable
from chainercv_i3d.training.model_setup import set_batch_norm
from chainercv_i3d.training.report import LOG_NAME
from chainercv_i3d.training.report import PLOT_NAME
from chainercv_i3d.training.report import TrainingLog
from chainercv_i3d.training.schedule import DEFAULT_SCHEDULE
from chainercv_i3d.training.schedule import make_schedule
from chainercv_i3d.training.snapshot import FINAL_MODEL_NAME
from chainercv_i3d.training.snapshot import load_snapshot
from chainercv_i3d.training.snapshot import save_final_model
from chainercv_i3d.training.snapshot import save_snapshot
from chainercv_i3d.training.snapshot import SNAPSHOT_NAME
from chainercv_i3d.transforms.clip_transform import ClipTransform
from chainercv_i3d.transforms.flip import flip_label_map
from chainercv_i3d.utils.comm import choose_chainermn_communicator
from chainercv_i3d.utils.comm import ranks_sharing_a_gpu
from chainercv_i3d.utils.comm import SerialComm
from chainercv_i3d.utils.comm import sum_counts
from chainercv_i3d.utils.interrupts import stopping_at_safe_points
from chainercv_i3d.utils.progress import progress_bar


def chainermn_communicator_name(name, comm, device):
    """The communicator to train with on ``device`` (a collective call):
    :func:`~chainercv_i3d.utils.comm.choose_chainermn_communicator`'s rule,
    told whether ranks share a GPU."""
    on_gpu = device.xp is not numpy
    shared = ranks_sharing_a_gpu(comm, device.device.id) if on_gpu else None
    return choose_chainermn_communicator(name, on_gpu, shared_gpu=shared)


def seed_dropout(seed, iteration, chunk, device):
    """Seeds the generator of dropout's masks for one sub-batch: a pure
    function of the run's seed, the update and the sub-batch's place in the
    global batch (so 2 ranks equal 1 rank with ``accumulate=2``)."""
    value = int(numpy.random.SeedSequence(
        [int(seed), int(iteration), int(chunk)]).generate_state(1)[0])
    if device.xp is numpy:
        numpy.random.seed(value)
    else:
        device.xp.random.seed(value)


def check_several_classes(dataset, train_dir):
    """Refuses a training set whose videos are all of one class: the loss
    would reach 0 and the accuracy 100% with nothing learnt. A video of a
    multi-label set counts each class of its actions."""
    labels = sorted({label for i in range(len(dataset.records))
                     for label in dataset.label_set(i)})
    if len(labels) == 1:
        names = dataset.label_names
        name = names[labels[0]] if 0 <= labels[0] < len(names) \
            else labels[0]
        raise ValueError(
            '{} holds videos of one class only ({!r}): a classifier needs '
            'at least two; add videos of other classes'.format(
                train_dir, name))


def clip_loss(logits, labels, loss):
    """The loss of a sub-batch, and how many of its clips have their top
    class right.

    Args:
        logits (chainer.Variable): ``(N, n_class)``.
        labels: ``(N,)`` int32 labels, or ``(N, n_class)`` int32 0/1 label
            sets (multi-label; one label is read as a set of one).
        loss (str): ``'softmax'``: softmax cross-entropy, the mean over the
            clips; ``'sigmoid'``: binary cross-entropy of a sigmoid per
            class, the mean over the clips and the classes.

    Returns:
        tuple: ``(loss, hits)``: the loss variable and, on the device, the
        count of clips whose top class is (one of) their label(s).
    """
    xp = chainer.backend.get_array_module(labels)
    if loss == 'softmax':
        return (F.softmax_cross_entropy(logits, labels),
                (logits.array.argmax(axis=1) == labels).sum())
    if labels.ndim == 1:
        labels = (xp.arange(logits.shape[1])[None, :]
                  == labels[:, None]).astype(xp.int32)
    top = logits.array.argmax(axis=1)
    hits = labels[xp.arange(len(labels)), top].sum()
    return F.sigmoid_cross_entropy(logits, labels), hits


class Trainer(object):
    """One training run on this rank; every rank makes one.

    Everything that can be wrong with the input (the data, the model, the
    output folder, a resume with other settings) raises ValueError here,
    before any update.

    Args:
        config (TrainConfig): The options.
        comm: The communicator (:func:`chainercv_i3d.utils.comm.get_comm`).
        device (chainer.backend.Device): This rank's device.
        say (callable): Prints a message for people (rank 0's are shown).
    """

    def __init__(self, config, comm, device, say=print):
        self.config = config
        self.comm = comm
        self.device = device
        self._say = say
        self.chainermn = None if isinstance(comm, SerialComm) else \
            comm.create_chainermn(chainermn_communicator_name(
                config.communicator, comm, device))
        self.schedule = make_schedule(
            config.schedule or DEFAULT_SCHEDULE[config.stream], config.lr,
            config.lr_steps)
        self.iterations = config.iterations or self.schedule.n_iteration
        if self.iterations is None:
            raise ValueError("schedule 'step' needs iterations: give the "
                             'number of updates')
        if comm.rank == 0:
            # Checked, not created: the first file written creates it, so a
            # run refused below leaves no empty folder.
            check_output_dir(config.out_dir)
        comm.barrier()
        self.dataset = self._open_training_set()
        self.config = config = resolve_defaults(config, self.dataset.preset)
        check_clip_fits_head(
            config, config.crop_size or self.dataset.preset.crop_size)
        self.dataset.sampler = training_sampler(config)
        self.label_names = self._label_names()
        self.flip_labels = flip_label_map(self.label_names) \
            if config.flip == 'swap' else {}
        # Random initial weights are drawn from numpy's global generator:
        # the same on every rank and in every run of the same seed.
        numpy.random.seed(config.seed)
        self.model = self._make_model()
        self.optimizer = self._make_optimizer()
        self.plan = BatchPlan(len(self.dataset), config.batch_size,
                              config.accumulate, comm.size, config.seed,
                              config.shuffle)
        self.val_dataset, self.val_protocol = self._open_validation_set()
        self.settings = config.run_settings(comm.size, self.schedule)
        self.iteration = self._resume_or_start()
        self.log = TrainingLog(config.out_dir, self.iteration)
        self._prime()

    def say(self, message):
        """Passes ``message`` to ``say`` on rank 0."""
        if self.comm.rank == 0:
            self._say(message)

    # Set-up -----------------------------------------------------------

    def _open_training_set(self):
        config = self.config
        dataset = PrecomputedVideoDataset(
            config.train_dir, use_pfio=config.use_pfio, seed=config.seed)
        if len(dataset) == 0:
            raise ValueError(
                '{} holds no precomputed video ({} listed, none done): run '
                'precompute_frames_flow.py first'.format(
                    config.train_dir, dataset.n_not_done))
        check_several_classes(dataset, config.train_dir)
        return dataset

    def _label_names(self):
        names = tuple(self.dataset.label_names)
        n_class = self.config.n_class or len(names)
        check_labels(self.dataset, n_class)
        if len(names) != n_class:
            # n_class larger than the labels seen: unnamed classes.
            names = names[:n_class] + tuple(
                'class_{}'.format(i) for i in range(len(names), n_class))
        return names

    def _make_model(self):
        config = self.config
        model = build_model(config.stream, config.pretrained_model,
                            len(self.label_names), self.label_names,
                            config.dropout_ratio, config.arch)
        if config.pretrained_model is not None:
            for line in preset_differences(self.dataset.preset,
                                           model.preset):
                self.say('warning: ' + line)
        # The trained model expects videos prepared as its training set,
        # cropped as in training; a sigmoid head scores classes
        # independently (multi_label: the demo shows sigmoid probabilities).
        model.preset = self.dataset.preset.replace(
            label_names=self.label_names,
            crop_size=config.crop_size or self.dataset.preset.crop_size,
            multi_label=config.loss == 'sigmoid')
        set_batch_norm(model, config.bn, self.chainermn)
        model.to_device(self.device)
        return model

    def _make_optimizer(self):
        config = self.config
        optimizer = chainer.optimizers.MomentumSGD(
            lr=self.schedule(0), momentum=config.momentum)
        if self.chainermn is not None:
            import chainermn  # optional: only under mpiexec
            optimizer = chainermn.create_multi_node_optimizer(
                optimizer, self.chainermn)
        optimizer.setup(self.model)
        if config.weight_decay:
            optimizer.add_hook(
                chainer.optimizer_hooks.WeightDecay(config.weight_decay))
        # After setup: Chainer keeps the frozen flag in the update rules.
        self.model.freeze(config.freeze_upto)
        check_trainable(self.model)
        return optimizer

    def _open_validation_set(self):
        config = self.config
        if config.val_dir is None:
            return None, None
        protocol = EvalProtocol.multi_view(
            1, config.val_n_frame, 1, self.model.preset, config.crop_size)
        dataset = PrecomputedVideoDataset(
            config.val_dir, protocol.sampler, use_pfio=config.use_pfio)
        check_labels(dataset, self.model.n_class, self.label_names)
        if dataset.multi_label and not any(r.get('labels')
                                           for r in dataset.records):
            # Refused now rather than at the first validation, hours in.
            raise ValueError('{}: no validation video has an action, so '
                             'its mAP is undefined: validate on a set with '
                             'actions'.format(config.val_dir))
        return dataset, protocol

    def _actual_optimizer(self):
        return getattr(self.optimizer, 'actual_optimizer', self.optimizer)

    def _resume_or_start(self):
        path = os.path.join(self.config.out_dir, SNAPSHOT_NAME)
        self._tidy_out_dir()
        if not os.path.exists(path):
            self._check_first_example()
            return 0
        iteration = load_snapshot(path, self.model, self.optimizer,
                                  self.settings)
        self.say('resumed from {} at iteration {} (its weights and state '
                 'replace pretrained_model)'.format(path, iteration))
        return iteration

    def _tidy_out_dir(self):
        """Rank 0 removes the temporary files of a run killed while writing
        its outputs (snapshot, log, plot, final model) and, with
        ``restart``, the earlier run's outputs themselves."""
        if self.comm.rank == 0:
            paths = [os.path.join(self.config.out_dir, name) for name in
                     (SNAPSHOT_NAME, LOG_NAME, PLOT_NAME, FINAL_MODEL_NAME)]
            remove_temporaries(*paths)
            found = [path for path in paths if os.path.exists(path)] \
                if self.config.restart else []
            for path in found:
                os.unlink(path)
            if found:
                self.say('restart: removed {}'.format(', '.join(found)))
        self.comm.barrier()

    def _check_first_example(self):
        # An unreadable set or a missing stream fails here, before any work.
        self._training_clips()(0, numpy.random.default_rng(0))

    def _training_clips(self):
        transform = ClipTransform(self.dataset.preset, 'random',
                                  self.config.flip != 'none',
                                  self.config.crop_size)
        return TrainingClips(self.dataset, self.config.stream, transform,
                             self.flip_labels)

    def _prime(self):
        # ChainerMN's optimizer only broadcasts on its first update after
        # every start (and does not update): broadcast rank 0's weights now
        # and let it record the parameters, so update 1 is a real one.
        if self.chainermn is not None:
            self.chainermn.bcast_data(self.model)
            self.optimizer.is_changed(self.model)

    # The loop ---------------------------------------------------------

    def _rank_examples(self, start):
        for iteration in range(start, self.iterations):
            for sub_batch in self.plan.rank_sub_batches(iteration,
                                                        self.comm.rank):
                for pair in sub_batch:
                    yield pair

    def run(self):
        """Trains up to ``iterations`` updates, then writes
        ``model_final.npz``; returns the last log entry.

        Ctrl-C or SIGTERM stops the run after the update under way (before
        any validation due), with a log entry and a snapshot of it, every
        rank at the same update, and raises KeyboardInterrupt; another,
        over a second later, stops at once, keeping the last snapshot."""
        config = self.config
        start = self.iteration
        if start >= self.iterations:
            self.say('nothing to do: the snapshot is at iteration {} and '
                     'iterations is {}'.format(start, self.iterations))
        else:
            self.say('{} clips, {} classes; {} rank(s) x batch {} x '
                     'accumulate {} = {} clips per update; iterations {} to '
                     '{}'.format(len(self.dataset), self.model.n_class,
                                 self.comm.size, config.batch_size,
                                 config.accumulate, self.plan.global_batch,
                                 start, self.iterations))
            self.say('clips: {} of {} frames, flips: {}{}'.format(
                config.sampler, config.frames, config.flip,
                ' ({} classes change when flipped)'.format(
                    len(self.flip_labels)) if self.flip_labels else ''))
        loader = ExampleLoader(
            self._training_clips(), config.n_workers, config.seed,
            mp_context=start_method(self.device))
        bar = progress_bar(self.iterations, self.comm, config.quiet,
                           initial=start, unit='update')
        self._bar = bar
        self._header_written = False
        try:
            with stopping_at_safe_points() as stop:
                examples = loader.iterate_epochs(self._rank_examples(start))
                self._loop(examples, start, stop)
        finally:
            bar.close()
            loader.close()
        self._write_final_model()
        return self.log.entries[-1] if self.log.entries else None

    def _loop(self, examples, start, stop):
        config = self.config
        counts = {'loss': 0.0, 'correct': 0, 'clips': 0}
        # A resumed run goes on from the time its log records.
        started = time.perf_counter() - self.log.elapsed_time()
        for iteration in range(start, self.iterations):
            sub_batches = [self._next_batch(examples)
                           for _ in range(config.accumulate)]
            for key, value in self.update(iteration, sub_batches).items():
                counts[key] += value
            self.iteration = done = iteration + 1
            self._bar.update()
            last = done == self.iterations
            if not last and self._stop_agreed(stop):
                # After an update, before any validation, the same on every
                # rank: what was done is kept.
                self._write_log(self._log_entry(done, counts, started))
                average_batch_norm_statistics(self.model, self.chainermn)
                self.save_snapshot()
                raise KeyboardInterrupt
            log_due = done % config.log_interval == 0 or last
            val_interval = config.val_interval or config.snapshot_interval
            val_due = self.val_dataset is not None and (
                done % val_interval == 0 or last)
            snapshot_due = done % config.snapshot_interval == 0 or last
            if val_due or snapshot_due:
                # Once per point: validation and the snapshot see the same
                # statistics, averaged over the ranks.
                average_batch_norm_statistics(self.model, self.chainermn)
            if log_due or val_due:
                entry = self._log_entry(done, counts, started)
                counts = {'loss': 0.0, 'correct': 0, 'clips': 0}
                if val_due:
                    entry.update(self.validate())
                self._write_log(entry)
            if snapshot_due:
                self.save_snapshot()

    def _stop_agreed(self, stop):
        """Whether any rank was asked to stop: one small collective per
        update, so that every rank stops at the same one."""
        return any(self.comm.allgather(stop.asked))

    def _next_batch(self, examples):
        clips, labels = [], []
        for _ in range(self.config.batch_size):
            i, example, error = next(examples)
            if example is None:
                raise ValueError('training video {} is unreadable: {} (run '
                                 'precompute_frames_flow.py on it again)'
                                 .format(self.dataset.video_id(i), error))
            clips.append(example[0])
            labels.append(example[1])
        return numpy.stack(clips), numpy.array(labels, numpy.int32)

    def update(self, iteration, sub_batches):
        """One update from this rank's sub-batches ``[(clips, labels)]``:
        their gradients summed, divided by their number, averaged over the
        ranks (one allreduce), then one SGD step at the schedule's rate.

        Returns:
            dict: This rank's summed loss, correct clips (top class right:
            for label sets, the top class is one of the clip's) and clips.
        """
        model, device = self.model, self.device
        self._actual_optimizer().lr = self.schedule(iteration)
        model.cleargrads()
        # Summed on the device and read once, after the update: on a GPU a
        # read per sub-batch would wait for each sub-batch to finish.
        loss_sums, corrects = [], []
        first_chunk = self.comm.rank * len(sub_batches)
        for k, (clips, labels) in enumerate(sub_batches):
            seed_dropout(self.config.seed, iteration, first_chunk + k, device)
            with chainer.using_config('train', True):
                logits = model(device.send(clips))
                loss, hits = clip_loss(logits, device.send(labels),
                                       self.config.loss)
            loss.backward()
            loss_sums.append(loss.array * len(labels))
            corrects.append(hits)
        if len(sub_batches) > 1:
            for param in model.params():
                if param.grad is not None:
                    param.grad /= len(sub_batches)
        self.optimizer.update()
        return {'loss': sum(float(s) for s in loss_sums),
                'correct': sum(int(c) for c in corrects),
                'clips': sum(len(labels) for _, labels in sub_batches)}

    def _log_entry(self, done, counts, started):
        totals = sum_counts(self.comm, counts)
        return {'iteration': done,
                'epoch': round(self.plan.epoch_detail(done), 4),
                'lr': self.schedule(done - 1),
                'main/loss': totals['loss'] / totals['clips'],
                'main/accuracy': totals['correct'] / totals['clips'],
                'elapsed_time': round(time.perf_counter() - started, 2)}

    def _write_log(self, entry):
        if self.comm.rank != 0:
            return
        if not self._header_written:
            self._bar.write(self.log.header())
            self._header_written = True
        self.log.append(entry)
        self._bar.write(self.log.format_entry(entry))

    def validate(self):
        """Top-1 and top-5 (multi-label: mAP) of the model on the
        validation set, every video counted once over all ranks; ``{}`` on
        the other ranks. Average the running statistics over the ranks
        first (:func:`average_batch_norm_statistics`)."""
        results = evaluate_ranks(
            self.val_dataset, {self.config.stream: self.model},
            self.val_protocol, self.comm, self.config.val_batch_size,
            self.config.n_workers, self.device, quiet=True)
        if results is None:
            return {}
        summary = summarize(results, self.val_dataset.n_not_done)
        metrics = summary[self.config.stream]
        if summary.get('multi_label'):
            _, labels, scores = multilabel_scores(results,
                                                  self.model.n_class)
            return {'validation/map': metrics['map'],
                    'validation/loss': sigmoid_cross_entropy(
                        scores[self.config.stream], labels)}
        return {'validation/top1': metrics['top1'],
                'validation/top5': metrics['top5'],
                'validation/loss': validation_loss(results,
                                                   self.config.stream)}

    def save_snapshot(self):
        """Rank 0 writes the snapshot (atomically,
        :func:`~chainercv_i3d.training.snapshot.save_snapshot`) and the
        plot; the running statistics must have been averaged over the ranks
        (:func:`average_batch_norm_statistics`), so that a resumed run holds
        what an uninterrupted one does."""
        if self.comm.rank == 0:
            save_snapshot(os.path.join(self.config.out_dir, SNAPSHOT_NAME),
                          self.model, self.optimizer, self.iteration,
                          self.settings)
            if self.log.entries:
                self.log.plot()
        self.comm.barrier()

    def _write_final_model(self):
        if self.comm.rank == 0:
            path = os.path.join(self.config.out_dir, FINAL_MODEL_NAME)
            save_final_model(path, self.model, self.config.arch)
            self.say('wrote {} (iteration {})'.format(path, self.iteration))
        self.comm.barrier()

