"""The report's words in Chinese (the default: the plan's hospital) and English."""
from __future__ import annotations

from typing import Callable

LANGS = ("zh", "en")

LABELS: dict[str, tuple[str, str]] = {
    # headings
    "report": ("演练总结报告与改进计划", "After-Action Report / Improvement Plan"),
    "report_short": ("演练总结", "After-action report"),
    "s_overview": ("一、演练概况", "1. Exercise overview"),
    "s_summary": ("二、执行摘要", "2. Executive summary"),
    "s_timeline": ("三、时间线", "3. Timeline"),
    "s_charts": ("图表", "Charts"),
    "s_events": ("事件记录", "Events"),
    "s_analysis": ("四、目标分析", "4. Analysis of objectives"),
    "s_impact": ("五、患者影响", "5. Patient impact"),
    "s_findings": ("六、发现与改进计划", "6. Findings and improvement plan"),
    "s_appendix": ("附录", "Appendix"),
    "a_runbook": ("附录 A　执行的预案步骤", "Appendix A. The runbook as run"),
    "a_config": ("附录 B　配置", "Appendix B. Configuration"),
    "a_files": ("附录 C　原始数据文件", "Appendix C. Raw data files"),
    "a_score": ("附录 D　评分明细", "Appendix D. Score breakdown"),
    "participants": ("参演人员（应急指挥部）", "Participants (emergency command)"),
    "objectives": ("演练目标与指标", "Objectives and targets"),
    "strengths": ("做得好的方面", "Strengths"),
    "key_findings": ("最重要的发现", "Most important findings"),
    "alerts": ("告警", "Alerts"),
    "notifications": ("通知", "Notifications sent"),
    "level": ("响应级别：应为与实际宣布", "Response level: implied and declared"),
    "journeys": ("按业务统计", "By journey"),
    "phases": ("按阶段统计", "By phase"),
    "data_loss": ("数据丢失（RPO）", "Data loss (RPO)"),
    "offline_reception": ("线下接诊与补录", "Offline reception and back-entry"),
    "findings": ("发现", "Findings"),
    "plan": ("改进计划", "Improvement plan"),
    "missing": ("证据不完整：本报告依据可读部分生成，以下内容缺失或无法读取",
                "Incomplete evidence: this report is built from what could be read; missing or unreadable:"),
    # overview fields
    "drill": ("演练", "Drill"),
    "date": ("日期", "Date"),
    "scenario": ("场景", "Scenario"),
    "failure_class": ("故障类别", "Failure class"),
    "time_scale": ("时间倍率", "Time scale"),
    "backend": ("运行环境", "Backend"),
    "mode": ("方式", "Mode"),
    "mode_live": ("实时演练（人工确认步骤）", "live (people acknowledge the manual steps)"),
    "mode_auto": ("自动演练（模拟操作员）", "automatic (simulated operators)"),
    "status": ("运行状态", "Run status"),
    "times": ("时间", "Times"),
    "run_id": ("运行编号", "Run"),
    "clocks_note": ("两套时钟：演练时间是预案的时间，本报告的目标与时刻均为演练时间，自首次注入故障起记为 F+，"
                    "自场景开始起记为 T+；实际时间（灰色）为真实流逝的时间，每真实秒对应 {scale} 演练秒。"
                    "患者指标（受影响比例、错误率、请求耗时）为真实值，与倍率无关。",
                    "Two clocks. Drill time is the plan's time: targets and times in this report are drill "
                    "time, counted from the first injected fault (F+) or from the scenario start (T+). "
                    "Wall-clock time (grey) is what really passed: {scale} drill seconds per real second. "
                    "Patient measures (affected share, error rates, request times) are real and do not "
                    "depend on the scale."),
    "started": ("开始", "started"), "t0": ("T+0", "T+0"), "fault": ("故障", "fault"),
    "recovery": ("恢复", "recovery"), "ended": ("结束", "ended"),
    "group": ("小组", "Group"), "core": ("核心成员", "Core"), "backup": ("后备成员", "Backup"),
    "objective": ("目标", "Objective"), "measure": ("度量", "Measure"), "within": ("要求", "Target"),
    "critical": ("关键", "critical"),
    "level_rule": ("依受影响患者比例定级", "from the share of affected patients"),
    # summary
    "verdict": ("结论", "Verdict"), "score": ("综合得分", "Overall score"),
    "summary_targets": ("{met}/{total} 项目标达成", "{met} of {total} targets met"),
    "summary_patients": ("{affected}/{active} 名活跃患者受影响（{share}）",
                         "{affected} of {active} active patients affected ({share})"),
    "summary_back": ("核心业务于故障后 {at} 恢复", "core business back {at} after the fault"),
    "summary_not_back": ("演练结束时核心业务仍未恢复", "core business not back by the end of the run"),
    "summary_lost": ("{lost} 条已确认写入丢失", "{lost} acknowledged writes lost"),
    "summary_level": ("宣布 {declared} 级响应（应为 {implied} 级）", "level {declared} declared (implied {implied})"),
    "no_findings": ("无需要改进的发现。", "No areas for improvement."),
    "ci_line": ("CI 摘要", "CI summary"),
    # tables
    "target": ("指标", "Target"), "actual": ("实际", "Actual"), "result": ("结果", "Result"),
    "margin": ("余量", "Margin"), "rating": ("评级", "Rating"), "reason": ("说明", "Reason"),
    "met": ("达成", "met"), "missed": ("未达成", "missed"), "n_a": ("不适用", "n/a"),
    "summary_na": ("（另有 {na} 项不适用）", " ({na} n/a)"),
    "na_rule": ("不适用（n/a）：本次演练中该指标没有可衡量的对象（原因见说明），既非达成也非未达成，不计入得分与结论。",
                "n/a: the target did not apply to this run (the reason says why); it is neither met nor "
                "missed and counts in neither the score nor the verdict."),
    "plan_required": ("{level}响应的预案要求（{basis}）", "What the plan requires at {level} ({basis})"),
    "basis_declared": ("依宣布的级别", "the declared level"),
    "basis_implied": ("依受影响比例应有的级别，高于宣布的级别", "the implied level, more severe than the declared one"),
    "required_item": ("要求", "Required"), "done": ("完成", "Done"),
    "k_channel": ("通知渠道", "channel"), "k_step": ("处置步骤", "step"),
    "deductions": ("扣分", "Deductions"),
    "score_costs": ("扣分项：每缺少一项预案要求的通知渠道或步骤、出现双主库等发现，按其类别扣分（见上表）。",
                    "Deductions: each required plan channel or step missing, and two primaries after a "
                    "promotion, cost points by kind (rows above)."),
    "rpo_trigger": ("测量原因", "Measured after"),
    "wall": ("实际", "wall"),
    "figure_parts": ("{actual} = 预案声明的等待 {declared} + 实际工作 {real}",
                     "{actual} = {declared} declared waits + {real} real work"),
    "figure_rule": ("实测值沿因果链（故障 → 告警 → 步骤 → 患者所见）拆为两部分：预案声明的等待（采样间隔、观察窗口、"
                    "模拟人员用时）按时间倍率压缩；机器与患者的实际工作（崩溃、提升、连接、请求）按真实时长计入。",
                    "A measured figure splits along its causal chain (fault → alert → steps → what patients "
                    "see) into the plan's declared waits (sampling intervals, observation windows, modeled "
                    "human steps), compressed by the time scale, and the machines' and patients' real work "
                    "(a crash, a promotion, a connect, a request), counted at its real duration."),
    "rating_rule": ("评级规则（参照 HSEEP）：", "Rating rule (after HSEEP): "),
    "declared": ("宣布", "Declared"), "implied": ("应为", "Implied"), "at": ("时间", "At"),
    "share_seen": ("宣布时所见比例", "share seen when declaring"),
    "none": ("无", "none"),
    "affected_patients": ("受影响患者", "Affected patients"),
    "downtime": ("中断时长", "Downtime"),
    "not_recovered": ("演练结束时仍未恢复", "not recovered by the end of the run"),
    "longest_wait": ("最长单次等待", "Longest single request"),
    "longest_outage": ("患者最长无法获得服务", "Longest a patient went unserved"),
    "ongoing": ("至记录结束仍未恢复", "still failing when the records end"),
    "error_rate": ("错误率", "Error rate"),
    "steady": ("稳态", "steady state"), "after_recovery": ("恢复后", "after recovery"),
    "phase": ("阶段", "Phase"), "requests": ("请求", "Requests"), "failed": ("失败", "Failed"),
    "before": ("故障前", "before the fault"), "during": ("故障中", "during the incident"),
    "after": ("恢复后", "after recovery"), "total": ("合计", "total"),
    "journey": ("业务", "Journey"), "patients": ("患者", "Patients"),
    "first_failure": ("首次失败", "First failure"), "last_failure": ("末次失败", "Last failure"),
    "no_incident_requests": ("故障期间无请求", "no requests during the incident"),
    "mode_repl": ("复制模式", "Replication"), "acked": ("已确认写入", "Acknowledged writes"),
    "lost": ("丢失写入", "Lost writes"), "lost_seconds": ("丢失时段", "Writes lost over"),
    "sample": ("样例", "Sample"), "measured_on": ("核对库", "Checked on"),
    "off_choices": ("受影响患者的去向", "Patients in trouble"),
    "off_to_offline": ("转线下", "to offline reception"), "off_retry": ("重试", "retried"),
    "off_give_up": ("放弃", "gave up"),
    "off_taken": ("线下登记（患者持回执）", "Offline records taken (receipts)"),
    "off_entered": ("已补录（含冲突）", "Back-entered (conflicts included)"), "off_runs": ("次补录", "back-entry runs"),
    "off_refused": ("拒绝的重复补录", "Duplicates refused"),
    "off_conflicts": ("冲突（待临床复核）", "Conflicts (for clinical review)"),
    "off_lost": ("丢失（目标 0）", "Lost (target 0)"),
    "off_after": ("补录开始后才登记", "Taken after back-entry began"),
    "off_dupes": ("重复补录（目标 0）", "Entered twice (target 0)"),
    "off_time": ("补录完成（自恢复起）", "Back-entry complete, from recovery"),
    "off_contact": ("需联系的患者（写入丢失或回执未补录）",
                    "Patients to contact (writes lost, or receipts not back-entered)"),
    "not_measured": ("本次未测量。", "Not measured in this run."),
    # the readiness checks before the drill (sections/readiness.j2)
    "readiness_before": ("演练前就绪检查", "Readiness before the drill"),
    "rd_ready": ("就绪", "READY"), "rd_not_ready": ("未就绪", "NOT READY"),
    "rd_aborted": ("检查中止", "CHECKS ABORTED"),
    "rd_score": ("就绪评分", "readiness score"), "rd_took": ("用时 {s} 秒", "{s} real s"),
    "rd_stopped": ("严重发现使演练在注入故障前停止", "a critical finding stopped the drill before any fault"),
    "rd_check": ("检查项", "Check"), "rd_status": ("结果", "Result"), "rd_seconds": ("用时（秒）", "Real s"),
    "rd_found": ("发现", "Found"),
    "rd_s_pass": ("通过", "pass"), "rd_s_warn": ("有提示", "warn"), "rd_s_fail": ("未通过", "fail"),
    "rd_s_skipped": ("跳过", "skipped"),
    "id": ("编号", "ID"), "severity": ("严重度", "Severity"), "finding": ("发现", "Finding"),
    "evidence": ("依据（日志）", "Evidence (journal)"), "action": ("纠正措施", "Corrective action"),
    "capability": ("能力要素", "Capability element"), "owner": ("责任组", "Owner"),
    "due": ("完成期限", "Due"),
    "due_rule": ("完成期限：高 30 天、中 60 天、低 90 天（自演练日期起）。",
                 "Due dates: high 30 days, medium 60 days, low 90 days from the drill's date."),
    "alert": ("告警", "Alert"), "raised": ("触发", "Raised"), "cleared": ("解除", "Cleared"),
    "detail": ("详情", "Detail"), "channel": ("渠道", "Channel"), "audience": ("对象", "Audience"),
    "text": ("内容", "Text"), "no_alerts": ("无告警", "no alerts"),
    "no_notifications": ("未发送通知", "no notifications sent"),
    "drill_time": ("演练时间", "Drill time"), "from_fault": ("距故障", "From fault"),
    "wall_clock": ("实际时间", "Wall clock"), "event": ("事件", "Event"),
    "step": ("步骤", "Step"), "trigger": ("触发条件", "Trigger"), "how": ("方式", "How"),
    "params": ("参数", "Parameters"), "deadline": ("时限", "Deadline"),
    "duration": ("用时", "Duration"), "file": ("文件", "File"), "size": ("大小", "Size"),
    "what": ("内容", "What it holds"), "stack_config": ("系统配置", "Stack configuration"),
    "levels_config": ("定级阈值", "Level thresholds"), "scenario_config": ("场景参数", "Scenario"),
    "files_note": ("本报告仅依据日志与请求记录生成，可用 `hospital-drill report 运行目录` 重新生成。",
                   "This report is derived from the journal and the request records alone; "
                   "`hospital-drill report RUN_DIR` rebuilds it."),
    "points": ("得分", "Points"), "weight": ("权重", "Weight"), "credit": ("得分率", "Credit"),
    "score_rule": ("得分规则：每项时间指标关键者权重 2、其余 1；达成得全分，未达成按超时比例得 0.5→0，未测得 0 分；"
                   "响应定级占 {level} 分；不适用（n/a）的指标不计。结论：没有未达成的关键指标为通过。",
                   "Score: each time target weighs 2 if critical, else 1; met = full credit, missed = "
                   "half credit falling to 0 at twice the target, unmeasured = 0; the response level is "
                   "worth {level} points; n/a targets are left out. Verdict: pass when no critical target is missed."),
    "markers": ("图中编号", "Numbered marks"),
    # charts
    "c_success": ("患者请求成功率", "Patient success rate"),
    "c_latency": ("请求耗时 p50 / p95（毫秒，对数坐标）", "Latency p50 / p95 (ms, log scale)"),
    "c_rps": ("每秒请求数（实际秒）", "Requests per second (real)"),
    "c_gantt": ("处置过程（步骤与告警）", "Response (steps and alerts)"),
    "c_links": ("链路利用率", "Link utilisation"),
    "c_writes": ("已确认写入（每个时间段）与丢失时段", "Acknowledged writes per bucket, and the window lost"),
    "c_lag": ("复制延迟（秒）", "Replication lag (s)"),
    "x_title": ("演练时间 T+", "drill time T+"),
    "success": ("成功率", "success"), "total_rps": ("全部", "all"), "failed_rps": ("失败", "failed"),
    "incident": ("故障期间", "incident"), "lost_window": ("丢失写入时段", "writes lost"),
    "threshold95": ("95% 阈值", "95% threshold"),
    "chart_desc": ("横轴为演练时间（自场景开始），每段 {bucket}；编号标记见下表。",
                   "x: drill time from the scenario start, buckets of {bucket}; numbered marks below."),
    "no_records": ("没有患者请求记录，无法绘制。", "No patient request records to chart."),
    "trend": ("演练趋势", "Drill trend"),
    # trend
    "t_title": ("演练趋势分析", "Drill trend"),
    "t_intro": ("{runs} 次演练（{drills} 个演练项目）；生成于 {generated}。",
                "{runs} runs of {drills} drills; generated {generated}."),
    "t_regressions": ("退步", "Regressions"),
    "t_no_regressions": ("未发现退步。", "No regressions."),
    "t_rule": ("判定规则：上次达成而本次未达成（newly_missed），或时间指标比上次增加超过 {threshold}（slower）。"
               "标记 ★ 为各演练最近一次运行中的退步。",
               "Rule: met last time and missed now (newly_missed), or a time grown by more than "
               "{threshold} over the previous run (slower). ★ marks regressions in a drill's latest run."),
    "t_kind": ("类型", "Kind"), "t_from": ("上次", "From"), "t_to": ("本次", "To"),
    "t_before": ("上次实际", "Before"), "t_after": ("本次实际", "After"), "t_why": ("说明", "Why"),
    "t_quarters": ("按季度（每季度最后一次运行的实际值）", "By quarter (the quarter's last run)"),
    "t_runs_table": ("逐次运行", "Run by run"),
    "t_run": ("运行", "Run"), "t_quarter": ("季度", "Quarter"),
    "t_chart": ("各指标实际用时占指标的比例", "actual as a share of each target"),
    "t_chart_desc": ("纵轴为实际值占指标的百分比，100% 为指标线；横轴为运行（按日期）。",
                     "y: actual as a percentage of the target (100 % is the target); x: runs by date."),
    "t_runs": ("运行（日期）", "runs (date)"),
    "t_target_line": ("指标", "target"),
    "t_skipped": ("无法读取的运行", "Runs that could not be read"),
    "t_incomparable": ("不可比较的相邻运行", "Runs not compared"),
    "t_incomparable_rule": ("时间倍率或时间模型不同的运行之间不比较（数值口径不同），各运行只与此前同倍率、同时间模型的运行比较。",
                            "Runs at a different time scale or time model are not compared (their figures "
                            "are not measured alike): each run is compared with the previous run at the same "
                            "scale and time model."),
    "t_scale": ("倍率", "Scale"), "t_model": ("时间模型", "Time model"),
    # the people: modeled figures, human and machine parts (targets.j2), sections/people.j2
    "modeled": ("模拟", "modeled"),
    "modeled_rule": ("† 模拟：该数值含模拟人员的声明用时（自动运行中人工步骤的用时或到岗用时），并非实测。",
                     "† modeled: the figure contains a simulated operator's declared duration (a manual "
                     "step's or a call-out in an automatic run): it is not a measurement."),
    "human_machine": ("人员 {human} · 预案等待 {waits} · 机器 {machine}",
                      "human {human} · plan's waits {waits} · machine {machine}"),
    "human_rule": ("人员用时：因果链上各步骤自开启至有人认领（人工步骤至完成）；预案等待：认领后步骤中预案声明的等待"
                   "（按倍率压缩）；机器用时：认领后步骤本身的实际工作（动作、脚本、调用）；其余为识别与观察等待。",
                   "Human: on the figure's causal chain, each step from its opening to a person's claim "
                   "(to the done for a manual step); plan's waits: the waits the plan declares in the "
                   "steps after that (compressed by the scale); machine: the steps' own real work (the "
                   "action, the program, the call); the rest is detection and observation."),
    "at_scale": ("×{scale}", "×{scale}"),
    "scale_rule": ("本次现场演练以 ×{scale} 倍率运行（非 1）：其各项数值均标注该倍率，声明的等待按倍率压缩，"
                   "人员与机器的实际用时按真实时长计入。",
                   "This live drill ran at ×{scale}, not 1: each of its figures is labelled with the "
                   "scale; declared waits were compressed by it, people's and machines' time counts "
                   "as it was."),
    "people": ("人员：谁在何时做了什么", "People: who did what, and when"),
    "pp_actions": ("认领、完成与受阻", "Claims, completions and blocks"),
    "pp_person": ("人员", "Person"), "pp_step": ("步骤", "Step"), "pp_move": ("动作", "Move"),
    "pp_call_out": ("到岗用时", "Call-out"), "pp_note": ("备注", "Note"),
    "pp_claimed": ("认领", "claimed"), "pp_done": ("完成", "done"), "pp_blocked": ("受阻", "blocked"),
    "pp_absent": ("缺席人员与替补", "Absent, and who covered"),
    "pp_named": ("指定缺席", "named"), "pp_drawn": ("随机抽取（种子 {seed}）", "drawn (seed {seed})"),
    "pp_covered": ("替补", "Covered by"), "pp_nobody": ("无人替补", "nobody"),
    "pp_golden": ("黄金响应期（前 60 分钟）：识别—分级—安抚—承接",
                  "The golden hour (first 60 minutes): identify, classify, reassure, take over"),
    "pp_by": ("完成人", "By"), "pp_gh_move": ("环节", "Move"),
    "gh_identify": ("识别", "identify"), "gh_classify": ("分级", "classify"),
    "gh_reassure": ("安抚", "reassure"), "gh_take_over": ("承接", "take over"),
    "pp_notes": ("观察员记录", "Observer notes"), "pp_injects": ("情景注入", "Injects shown"),
    "pp_reminders": ("超时提醒", "Overdue reminders pushed"),
    "pp_reminder": ("{step}（{group}）超时，等待{waiting}{by}；应呼叫：{call}",
                    "{step} ({group}) overdue, waiting for a {waiting}{by}; call: {call}"),
    "pp_to": ("对象", "To"), "pp_everyone": ("全体", "everyone"),
}

VERDICT = {"pass": ("通过", "PASS"), "fail": ("未通过", "FAIL"), "aborted": ("中止", "ABORTED")}
SEVERITY = {"critical": ("严重", "critical"), "high": ("高", "high"), "medium": ("中", "medium"), "low": ("低", "low")}
CAPABILITY = {"plan": ("预案", "plan"), "organisation": ("组织", "organisation"),
              "equipment": ("装备与系统", "equipment"), "training": ("培训", "training")}
RATING = {"P": ("顺利完成", "performed without challenges"),
          "S": ("完成但存在一些问题", "performed with some challenges"),
          "M": ("完成但存在重大问题", "performed with major challenges"),
          "U": ("未能完成", "unable to be performed"),
          "n/a": ("不适用", "not applicable")}
STATUS = {"ok": ("完成", "ok"), "failed": ("失败", "failed"), "unfinished": ("未完成", "unfinished"),
          "skipped": ("跳过", "skipped"), "not run": ("未执行", "not run"),
          "completed": ("完成", "completed"), "aborted": ("中止", "aborted"), "unknown": ("未知", "unknown")}
KIND = {"auto": ("自动", "automated"), "manual": ("人工", "manual"),
        "exec": ("脚本", "the hospital's script"), "http": ("HTTP 调用", "the hospital's HTTP call")}
MEASURE = {"detection": ("识别（首个告警）", "detection (first alert)"),
           "step": ("步骤完成", "step finished"), "recovery": ("核心业务恢复", "recovery of core business"),
           "rpo": ("数据恢复点", "RPO (writes lost)"), "level": ("响应定级", "response level")}
FAILURE_CLASS = {"database": "数据库", "server": "服务器", "network": "网络", "bandwidth": "带宽",
                 "third_party": "第三方接口", "config_error": "配置错误", "malicious_traffic": "恶意流量",
                 "data_deletion": "数据误删", "power_loss": "断电", "false_alarm": "误报",
                 "composite": "复合故障"}


def translator(lang: str) -> Callable[..., str]:
    """t(key, **fmt) → the label in `lang` (keys not in the table come back as they are)."""
    i = 0 if lang == "zh" else 1

    def t(key: str, **fmt: object) -> str:
        pair = LABELS.get(key)
        text = key if pair is None else pair[i]
        return text.format(**fmt) if fmt else text
    return t


def pick(table: dict[str, tuple[str, str]], key: str | None, lang: str) -> str:
    if key is None:
        return "—"
    pair = table.get(key)
    return key if pair is None else pair[0 if lang == "zh" else 1]
