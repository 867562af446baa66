//! AWS Step Functions (Service Authorization Reference: "Actions, resources, and condition keys
//! for AWS Step Functions"): executions on their state machine, task answers on the token's
//! issuer.

use super::*;

pub(super) fn states(request: &HttpRequest<'_>) -> Result<Call, Unmapped> {
    let s = "states";
    let (op, body) = json_operation(s, "AWSStepFunctions", request)?;
    let field = |name: &str| {
        body.get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| unmapped(s, format!("{op} without {name}")))
    };
    let action = format!("states:{op}");
    match op.as_str() {
        "StartExecution" | "DescribeStateMachine" | "ListExecutions" => {
            Ok(Call::new(s, &op, vec![(action, field("stateMachineArn")?)]))
        }
        "DescribeExecution" | "StopExecution" | "GetExecutionHistory" => {
            Ok(Call::new(s, &op, vec![(action, field("executionArn")?)]))
        }
        "GetActivityTask" => Ok(Call::new(s, &op, vec![(action, field("activityArn")?)])),
        "SendTaskSuccess" | "SendTaskFailure" | "SendTaskHeartbeat" => {
            let mut c = Call::new(s, &op, vec![(action, TASK_TOKEN_RESOURCE.into())]);
            c.task_token = Some(field("taskToken")?);
            Ok(c)
        }
        other => Err(unmapped(s, format!("operation {other}"))),
    }
}
