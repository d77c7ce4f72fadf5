"""Evaluation of the two models as in the paper (§3.3–3.6, Tables 1–2, Fig. 2).

    metrics.py  CNR, SSIM/PSNR on heart crops, Dice        lpips.py   LPIPS from local weights only
    stats.py    mean ± SD, Wilcoxon, case bootstrap        paper.py   the published numbers
    report.py   run the models on a data set, report.json  models.py  model folders → segment / enhance
    tables.py   report.md                                  figures.py PNG figures
    families.py the benchmark families no model trained on

Entry point: `report.evaluate_dataset(data_dir, models.ModelPair(...), report_dir, report.EvalSettings())`.
Nothing is imported here, so `scarenhance --help` stays fast.
"""
