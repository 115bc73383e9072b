"""Transfer of a pretrained backbone to downstream tasks (no Lightning here).

- :mod:`resmo.transfer.voc`: a Pascal VOC detection folder, read and checked;
- :mod:`resmo.transfer.detector`: Faster R-CNN on an exported ResNet, MoCo's R-C4 from torchvision's parts or torchvision's FPN;
- :mod:`resmo.transfer.settings`: the fine-tuning options as asked, resolved once into the settings;
- :mod:`resmo.transfer.train_detect`: fine-tuning for one seed, then COCO-style and VOC07 AP;
- :mod:`resmo.transfer.metrics`: AP / AP50 / AP75 with torchmetrics (the ``detect`` extra);
- :mod:`resmo.transfer.voc07_ap`: VOC07's 11-point AP, as detectron2 reports it on VOC;
- :mod:`resmo.transfer.protocol`: MoCo's VOC detection protocol beside this one, as data;
- :mod:`resmo.transfer.results`: mean and std over seeds, the JSON in ``<run>/transfer/``;
- :mod:`resmo.transfer.detect`: ``resmo transfer detect`` from start to end.

Nothing is imported here, so ``import resmo.transfer.voc`` stays light.
"""
