//! Registration of the agent's metrics (the handles stay private to `events`).

use prometheus_client::registry::Registry;

use super::AgentMetrics;

impl AgentMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "upsoak_agent_slo_verdict",
            "Latest verdict of each SLO as a state set (1 for the current verdict)",
            self.verdict.clone(),
        );
        r.register(
            "upsoak_agent_slo_verdict_changes",
            "Changes of each SLO's verdict from one judged transition to the next (the first counts)",
            self.changes.clone(),
        );
        r.register(
            "upsoak_agent_slo_value",
            "Mean of the latest judged window",
            self.value.clone(),
        );
        r.register(
            "upsoak_agent_slo_current",
            "Value of the SLO's expression at its group's latest evaluation slot",
            self.current.clone(),
        );
        r.register(
            "upsoak_agent_slo_baseline",
            "Mean of the SLO's baseline",
            self.baseline.clone(),
        );
        r.register(
            "upsoak_agent_slo_threshold",
            "Threshold the baseline criterion sets",
            self.threshold.clone(),
        );
        r.register(
            "upsoak_agent_slo_health",
            "1 when the SLO's latest query succeeded, 0 when it failed (the error is in the log)",
            self.health.clone(),
        );
        r.register(
            "upsoak_agent_slo_last_error_timestamp_seconds",
            "When a query of the SLO last failed (unix seconds)",
            self.last_error.clone(),
        );
        r.register(
            "upsoak_agent_evaluations",
            "Group evaluations run, by group (one per group per slot)",
            self.evaluations.clone(),
        );
        r.register(
            "upsoak_agent_rule_evaluation_failures",
            "Failed SLO queries, by group",
            self.failures.clone(),
        );
        r.register(
            "upsoak_agent_missed_evaluations",
            "Evaluation slots of each group skipped because the agent was busy or suspended",
            self.missed.clone(),
        );
        r.register(
            "upsoak_agent_wanderer_read_failures",
            "Slots at which the Wanderer's generation could not be read (nothing is assumed)",
            self.wanderer_failures.clone(),
        );
        r.register(
            "upsoak_agent_transitions_detected",
            "Transitions of the Wanderer seen (changes of its generation)",
            self.detected.clone(),
        );
        r.register(
            "upsoak_agent_transitions_judged",
            "Transitions judged, by overall verdict",
            self.judged.clone(),
        );
        r.register(
            "upsoak_agent_disruption_windows_judged",
            "Disruption windows (apply start to settle end) judged, by verdict",
            self.disruption_judged.clone(),
        );
        r.register(
            "upsoak_agent_steady_chunks_judged",
            "Chunks of the steady period after a transition's first window judged, by verdict",
            self.chunks_judged.clone(),
        );
        r.register(
            "upsoak_agent_alerts_sent",
            "Alerts accepted by Alertmanager",
            self.alerts_sent.clone(),
        );
        r.register(
            "upsoak_agent_alerts_dropped",
            "Alerts dropped because the retry queue was full",
            self.alerts_dropped.clone(),
        );
        r.register(
            "upsoak_agent_alerts_queued",
            "Alert batches waiting for a retry",
            self.alerts_queued.clone(),
        );
        r.register(
            "upsoak_agent_spec_reloads",
            "Reloads of the SLO specs (SIGHUP), by result; a failed one keeps the old specs",
            self.reloads.clone(),
        );
        r.register(
            "upsoak_agent_annotation_failures",
            "Grafana annotations that could not be posted or recorded",
            self.annotation_failures.clone(),
        );
        r.register(
            "upsoak_agent_webhook_auth_enabled",
            "1 when the Alertmanager webhook requires credentials, 0 when anyone who reaches the port can post",
            self.webhook_auth.clone(),
        );
        r.register(
            "upsoak_agent_webhook_refused",
            "Posts to the Alertmanager webhook refused, by reason",
            self.webhook_refused.clone(),
        );
        r.register(
            "upsoak_agent_webhook_alerts",
            "Alerts received in accepted webhook posts",
            self.webhook_alerts.clone(),
        );
        r.register(
            "upsoak_agent_webhook_alerts_dropped",
            "Webhook alerts dropped to keep the inbox within its byte bound (the oldest first)",
            self.webhook_dropped.clone(),
        );
        r.register(
            "upsoak_agent_webhook_inbox_alerts",
            "Alerts in the webhook inbox",
            self.inbox_alerts.clone(),
        );
        r.register(
            "upsoak_agent_webhook_inbox_bytes",
            "Bytes (as JSON) of the alerts in the webhook inbox",
            self.inbox_bytes.clone(),
        );
        r.register(
            "upsoak_agent_baseline_slos",
            "SLOs in the baseline judged against (0: none yet, objectives only)",
            self.baseline_slos.clone(),
        );
        self.runtime.register(r);
    }
}
