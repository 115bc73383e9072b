"""Subcommands of ``resmo`` beyond ``pretrain``: each module has ``add_parser`` and ``run``.

- :mod:`~resmo.commands.eval_command`: ``resmo eval knn|linear``
- :mod:`~resmo.commands.gap_command`: ``resmo gap``
- :mod:`~resmo.commands.report_command`: ``resmo report``
- :mod:`~resmo.commands.export_command`: ``resmo export``
- :mod:`~resmo.commands.recipes_command`: ``resmo recipes``

A module may also have ``kept_on_interrupt(args) -> str``: what a Ctrl+C leaves and how
to continue (resmo.ctrl_c; default: nothing written, run the command again).

Heavy imports (torch models, Lightning, matplotlib) happen inside ``run``, so building the
parser stays fast and side-effect free.
"""
