//! The deployment files in `deploy/` against the code they deploy: the ECS task definition runs
//! what the image and the service expect, the IAM policy grants exactly the CloudWatch Logs and
//! DynamoDB calls the source makes (DynamoDB: on the state table only), the table `deploy/README.md`
//! creates has the keys and TTL attribute the code uses, and `logboard healthcheck` (the task's and
//! the image's health check) tells a serving logboard from none.

use crate::common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use common::binary::{self, logboard};
use logboard::config::Config;
use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read_json(relative: &str) -> Value {
    let path = repo().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{relative} is not valid JSON: {e}"))
}

fn task_definition() -> Value {
    read_json("deploy/ecs-task-definition.json")
}

fn container(task: &Value) -> &Value {
    let containers = task["containerDefinitions"].as_array().expect("containerDefinitions");
    assert_eq!(containers.len(), 1, "one container: logboard");
    &containers[0]
}

/// `name -> value` of a container's `environment` or `secrets` (`valueFrom`).
fn pairs<'a>(list: &'a Value, value_key: &str) -> Vec<(&'a str, &'a str)> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|entry| {
            (entry["name"].as_str().expect("name"), entry[value_key].as_str().unwrap_or_else(|| panic!("{entry}")))
        })
        .collect()
}

#[test]
fn the_task_definition_runs_on_fargate_on_port_8080_with_the_images_health_check() {
    let task = task_definition();
    assert_eq!(task["requiresCompatibilities"], serde_json::json!(["FARGATE"]));
    assert_eq!(task["networkMode"], "awsvpc");
    for role in ["taskRoleArn", "executionRoleArn"] {
        let arn = task[role].as_str().unwrap_or_else(|| panic!("{role}"));
        assert!(arn.starts_with("arn:aws:iam::<ACCOUNT>:role/"), "{role}: {arn}");
    }
    let container = container(&task);
    assert_eq!(container["image"], "<ACCOUNT>.dkr.ecr.<REGION>.amazonaws.com/logboard:<TAG>");
    let ports: Vec<&Value> = container["portMappings"].as_array().expect("portMappings").iter().collect();
    assert_eq!(ports.len(), 1);
    assert_eq!((&ports[0]["containerPort"], &ports[0]["protocol"]), (&Value::from(8080), &Value::from("tcp")));

    // The health check runs inside the image, which has no curl: the binary probes itself.
    let command: Vec<&str> = container["healthCheck"]["command"]
        .as_array()
        .expect("healthCheck.command")
        .iter()
        .map(|part| part.as_str().expect("text"))
        .collect();
    assert_eq!(command, ["CMD", "logboard", "healthcheck"]);
    let timeout = container["healthCheck"]["timeout"].as_u64().expect("healthCheck.timeout");
    assert!(
        u128::from(timeout) * 1000 > logboard::healthcheck::PROBE_TIMEOUT.as_millis(),
        "ECS must wait longer than the probe does: {timeout} s"
    );
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    assert!(dockerfile.contains("CMD [\"logboard\", \"healthcheck\"]"), "the image's HEALTHCHECK is the same probe");
    let instructions = dockerfile.lines().filter(|line| !line.trim_start().starts_with('#'));
    assert!(!instructions.clone().any(|line| line.contains("curl")), "the image installs no curl");

    let log = &container["logConfiguration"];
    assert_eq!(log["logDriver"], "awslogs");
    for option in ["awslogs-group", "awslogs-region", "awslogs-stream-prefix"] {
        assert!(log["options"][option].is_string(), "logConfiguration.options.{option}");
    }
}

#[test]
fn the_stop_timeout_outlasts_the_writers_shutdown_flush_within_ecs_limits() {
    let task = task_definition();
    let stop = container(&task)["stopTimeout"].as_u64().expect("stopTimeout in seconds");
    assert!((25..=120).contains(&stop), "stopTimeout {stop} s is outside 25..=120");
    let flush = logboard::SHUTDOWN_FLUSH_DEADLINE.as_secs();
    // Some seconds more: the accept loop closes connections before the flush starts.
    assert!(stop >= flush + 5, "stopTimeout {stop} s leaves no room after the {flush} s flush deadline");
}

#[test]
fn the_task_definitions_environment_is_a_configuration_logboard_accepts_on_cloudwatch_and_dynamodb() {
    let task = task_definition();
    let environment = pairs(&container(&task)["environment"], "value");
    // What an operator fills in for the placeholders.
    let filled: Vec<(String, String)> = environment
        .iter()
        .map(|(name, value)| {
            let value = value.replace("<REGION>", "eu-west-1").replace("<VPC_CIDR>", "10.0.0.0/16");
            (name.to_string(), value.replace("<ACCOUNT>", "123456789012"))
        })
        .collect();
    // The secrets, as ECS would put them in the environment, are keys logboard knows.
    let secrets = pairs(&container(&task)["secrets"], "valueFrom");
    let secret_values = secrets.iter().map(|(name, _)| {
        let value = if name.contains("WEBHOOK") {
            "https://hooks.slack.com/services/T/B/X".into()
        } else {
            "s3cr3t-".repeat(8)
        };
        (name.to_string(), value)
    });
    let with_secrets: Vec<(String, String)> = filled.iter().cloned().chain(secret_values).collect();
    let channel = "\n[smtp]\nhost = \"smtp.example.com\"\n\n[[channels]]\nname = \"ops-slack\"\nkind = \"slack\"\n";
    let text = format!("{}{channel}", common::SHIPPED_CONFIG);
    let config = Config::from_sources(&text, &with_secrets).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.channels[0].webhook_url.is_some(), "the webhook comes from its secret");
    assert!(config.auth.session_secret.is_some() && config.smtp.password.is_some());
    assert_eq!(config.storage.backend, logboard::config::Backend::Cloudwatch);
    assert_eq!(config.server.listen, "0.0.0.0:8080");
    assert_eq!(config.cloudwatch.region, "eu-west-1");
    // The shared state: every task on one DynamoDB table, in the region of the groups, on AWS's
    // own endpoint.
    assert_eq!(config.state.backend, logboard::config::state::StateBackend::Dynamodb);
    assert_eq!(config.state.table, "logboard-state");
    assert_eq!(config.state.region(&config), "eu-west-1");
    assert_eq!(config.state.endpoint_url, "");
}

#[test]
fn the_task_definitions_secrets_come_from_ssm_or_secrets_manager_arns() {
    let task = task_definition();
    let secrets = pairs(&container(&task)["secrets"], "valueFrom");
    let names: BTreeSet<&str> = secrets.iter().map(|(name, _)| *name).collect();
    for needed in ["LOGBOARD_ADMIN_PASSWORD", "LOGBOARD__AUTH__SESSION_SECRET", "LOGBOARD__SMTP__PASSWORD"] {
        assert!(names.contains(needed), "{needed} is not among the secrets: {names:?}");
    }
    let webhook = logboard::config::alerts::webhook_env_name("ops-slack");
    assert!(names.contains(webhook.as_str()), "the webhook of channel ops-slack, {webhook}: {names:?}");
    for (name, arn) in &secrets {
        let ssm = arn.starts_with("arn:aws:ssm:<REGION>:<ACCOUNT>:parameter/");
        let secrets_manager = arn.starts_with("arn:aws:secretsmanager:<REGION>:<ACCOUNT>:secret:");
        assert!(ssm || secrets_manager, "{name}: {arn} is not an SSM parameter or Secrets Manager ARN");
    }
    let environment = pairs(&container(&task)["environment"], "value");
    for (name, _) in environment {
        assert!(!names.contains(name), "{name} is both plain environment and a secret");
        assert!(!name.contains("PASSWORD") && !name.contains("SECRET"), "{name} belongs in secrets");
    }
}

/// A setting of a Cargo profile of `manifest`, or of the profile it inherits from.
fn profile_setting(manifest: &toml::Table, profile: &str, key: &str) -> Option<toml::Value> {
    let table = manifest.get("profile")?.get(profile)?;
    match table.get(key) {
        Some(value) => Some(value.clone()),
        None => profile_setting(manifest, table.get("inherits")?.as_str()?, key),
    }
}

#[test]
fn the_image_ships_its_binary_stripped_of_debug_info_and_local_release_builds_keep_line_tables() {
    let manifest: toml::Table =
        std::fs::read_to_string(repo().join("Cargo.toml")).expect("Cargo.toml").parse().expect("valid TOML");
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    let instructions: Vec<String> = dockerfile
        .replace("\\\n", " ")
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .map(str::to_string)
        .collect();
    let builds: Vec<&str> = instructions
        .iter()
        .flat_map(|line| line.split("&&"))
        .map(str::trim)
        .filter(|command| command.starts_with("cargo build"))
        .collect();
    assert_eq!(builds.len(), 2, "the dependencies' layer, then the crate: {builds:?}");
    for build in &builds {
        let words: Vec<&str> = build.split_whitespace().collect();
        let profile = match words.iter().position(|w| *w == "--profile") {
            Some(at) => words.get(at + 1).copied().expect("a profile name"),
            None if words.contains(&"--release") => "release",
            None => panic!("the image builds with optimisations: {build}"),
        };
        let strip = profile_setting(&manifest, profile, "strip");
        assert!(
            matches!(strip.as_ref().and_then(toml::Value::as_str), Some("debuginfo" | "symbols"))
                || strip.as_ref().and_then(toml::Value::as_bool) == Some(true),
            "profile {profile} of `{build}` does not strip the debug info: strip = {strip:?}"
        );
        let dir = if profile == "dev" { "debug" } else { profile };
        assert!(
            instructions.iter().any(|line| line.contains(&format!("cp target/{dir}/logboard /usr/local/bin/logboard"))),
            "the image gets the binary that `{build}` made"
        );
    }
    assert!(
        instructions.iter().any(|line| line.starts_with("COPY --from=build /usr/local/bin/logboard ")),
        "the run stage takes that binary"
    );
    // `cargo run --release` keeps the line tables, for backtraces with file:line.
    assert_eq!(profile_setting(&manifest, "release", "debug"), Some(toml::Value::from("line-tables-only")));
    assert_eq!(profile_setting(&manifest, "release", "strip"), None);
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The API operations of the AWS SDK crate `sdk` (e.g. `aws-sdk-cloudwatchlogs`) this crate is
/// built with, snake_case, read from the SDK's source (one `src/operation/<name>` module per API
/// operation).
fn sdk_operations(sdk: &str) -> BTreeSet<String> {
    let lock: toml::Table =
        toml::from_str(&std::fs::read_to_string(repo().join("Cargo.lock")).expect("Cargo.lock")).expect("toml");
    let version = lock["package"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"].as_str() == Some(sdk))
        .and_then(|p| p["version"].as_str())
        .unwrap_or_else(|| panic!("{sdk} in Cargo.lock"))
        .to_string();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    let registry = cargo_home.join("registry/src");
    let operations = std::fs::read_dir(&registry)
        .unwrap_or_else(|e| panic!("{}: {e}", registry.display()))
        .map(|index| index.expect("entry").path().join(format!("{sdk}-{version}/src/operation")))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| panic!("the source of {sdk} {version} under {}", registry.display()));
    let names: BTreeSet<String> = std::fs::read_dir(&operations)
        .expect("operations")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.is_dir())
        .filter_map(|path| path.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .collect();
    assert!(names.len() > 30, "not the operations of {sdk}: {names:?}");
    names
}

/// `put_log_events` -> `PutLogEvents`, the IAM action's name.
fn pascal_case(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The code of a source file as the service runs it: comment lines and the unit tests (the
/// `#[cfg(test)] mod` that rustfmt'd files end with) left out.
fn service_code(path: &Path) -> String {
    let source = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let code: Vec<&str> = source.lines().filter(|line| !line.trim_start().starts_with("//")).collect();
    let code = code.join("\n");
    match code.find("#[cfg(test)]\nmod ") {
        Some(tests) => code[..tests].to_string(),
        None => code,
    }
}

/// The snake_case names of the SDK `operations` that `code` calls: every fluent call
/// `.operation()`.
fn calls_in(code: &str, operations: &BTreeSet<String>) -> BTreeSet<String> {
    let call = regex::Regex::new(r"\.\s*([a-z][a-z0-9_]*)\s*\(\s*\)").expect("regex");
    call.captures_iter(code).map(|found| found[1].to_string()).filter(|name| operations.contains(name)).collect()
}

/// `src/dynamo/`: the module that owns the DynamoDB client and the state table. Every DynamoDB
/// call is made there (checked by [`dynamodb_calls`]), so that is what the DynamoDB scan reads
/// and the CloudWatch Logs scan leaves out (the two SDKs share operation names such as
/// `tag_resource`).
fn dynamo_dir() -> PathBuf {
    repo().join("src/dynamo")
}

/// The IAM names of the CloudWatch Logs operations the source calls: every SDK fluent call
/// `.operation()` in `src/` outside `src/dynamo/`.
fn cloudwatch_operations_called() -> BTreeSet<String> {
    let operations = sdk_operations("aws-sdk-cloudwatchlogs");
    assert!(operations.contains("put_log_events"), "not CloudWatch Logs: {operations:?}");
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    files
        .iter()
        .filter(|file| !file.starts_with(dynamo_dir()) && **file != s3_file())
        .flat_map(|file| calls_in(&service_code(file), &operations))
        .map(|name| pascal_case(&name))
        .collect()
}

/// The text of the function `name` in rustfmt-formatted `code`: from its `fn name` line to the
/// closing brace at that line's indentation.
fn function_text<'a>(code: &'a str, name: &str) -> Option<&'a str> {
    let head = regex::Regex::new(&format!(
        r"(?m)^( *)(?:pub(?:\([a-z:]+\))? )?(?:const )?(?:async )?fn {}\s*[<(]",
        regex::escape(name)
    ))
    .expect("regex");
    let found = head.captures(code)?;
    let start = found.get(0)?.start();
    let close = format!("\n{}}}", &found[1]);
    let end = code[start..].find(&close)? + start + close.len();
    Some(&code[start..end])
}

/// The table's creation: `Table::create` in `src/dynamo/mod.rs` and, transitively, the methods
/// of that file it calls on `self` (waiting for the table to be active). Only
/// `logboard create-state-table` runs it, with the operator's credentials (`deploy/README.md`
/// creates the table with the AWS CLI instead), so the task role needs none of its calls
/// (CreateTable, DescribeTable, UpdateTimeToLive) — unless the running service calls them too,
/// elsewhere.
const TABLE_CREATION: &str = "create";

/// The DynamoDB calls of `src/dynamo/`, split: (those of the table's creation, the code the
/// running service runs). Checks first that no other file uses the DynamoDB client.
fn dynamodb_calls(operations: &BTreeSet<String>) -> (BTreeSet<String>, String) {
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    let cloudwatch = sdk_operations("aws-sdk-cloudwatchlogs");
    let dynamodb_only: Vec<&String> = operations.difference(&cloudwatch).collect();
    let on_a_client = regex::Regex::new(r"\bclient\s*\.\s*([a-z][a-z0-9_]*)\s*\(\s*\)").expect("regex");
    for file in files.iter().filter(|file| !file.starts_with(dynamo_dir())) {
        let code = service_code(file);
        assert!(!code.contains("aws_sdk_dynamodb"), "{}: DynamoDB is used in src/dynamo/ only", file.display());
        for found in on_a_client.captures_iter(&code) {
            let name = &found[1];
            assert!(!dynamodb_only.iter().any(|op| *op == name), "{}: a DynamoDB call, {name}()", file.display());
        }
    }

    let module = dynamo_dir().join("mod.rs");
    let mut service = service_code(&module);
    let mut creation = String::new();
    let callee = regex::Regex::new(r"\bself\s*\.\s*([a-z_][a-z0-9_]*)\s*\(").expect("regex");
    let mut pending = vec![TABLE_CREATION.to_string()];
    let mut seen = BTreeSet::new();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(text) = function_text(&service, &name).map(str::to_string) else {
            assert_ne!(name, TABLE_CREATION, "no fn {TABLE_CREATION} (the table's creation) in {}", module.display());
            continue;
        };
        pending.extend(callee.captures_iter(&text).map(|found| found[1].to_string()));
        service = service.replacen(&text, "", 1);
        creation.push_str(&text);
        creation.push('\n');
    }
    for file in files.iter().filter(|file| file.starts_with(dynamo_dir()) && **file != module) {
        service.push('\n');
        service.push_str(&service_code(file));
    }
    (calls_in(&creation, operations), service)
}

/// The IAM actions (without `dynamodb:`) that the `operations` called in `code` need. Each
/// operation is its own action but the transactions: `TransactWriteItems` is no IAM action, each
/// of its parts needs the action of the single-item call it stands for (Put: PutItem, Update:
/// UpdateItem, Delete: DeleteItem, ConditionCheck: ConditionCheckItem), and `TransactGetItems`
/// needs GetItem ("Using IAM with DynamoDB transactions", DynamoDB developer guide). The parts are
/// read from the code: each `TransactWriteItem::builder()` and the part it is given next.
fn dynamodb_actions(operations: &BTreeSet<String>, code: &str) -> BTreeSet<String> {
    let builders = regex::Regex::new(r"\bTransactWriteItem\s*::\s*builder\s*\(").expect("regex");
    let parts = regex::Regex::new(
        r"\bTransactWriteItem\s*::\s*builder\s*\(\s*\)\s*\.\s*(?:set_)?(put|update|delete|condition_check)\s*\(",
    )
    .expect("regex");
    let mut actions = BTreeSet::new();
    for operation in operations {
        match operation.as_str() {
            "transact_write_items" => {
                let found: Vec<String> = parts.captures_iter(code).map(|part| part[1].to_string()).collect();
                assert_eq!(
                    found.len(),
                    builders.find_iter(code).count(),
                    "a TransactWriteItem whose part the scan cannot read (write it `TransactWriteItem::builder().put(..)`)"
                );
                assert!(!found.is_empty(), "transact_write_items is called, but no TransactWriteItem is built");
                for part in found {
                    actions.insert(match part.as_str() {
                        "condition_check" => "ConditionCheckItem".to_string(),
                        item => format!("{}Item", pascal_case(item)),
                    });
                }
            }
            "transact_get_items" => {
                actions.insert("GetItem".to_string());
            }
            "execute_statement" | "batch_execute_statement" | "execute_transaction" => {
                panic!("{operation}: PartiQL needs dynamodb:PartiQL* actions by statement; map them here")
            }
            other => {
                actions.insert(pascal_case(other));
            }
        }
    }
    actions
}

/// One statement of the task role's policy.
struct Statement {
    /// The service prefix of its actions: `logs`, `dynamodb` or `s3` (one per statement).
    service: String,
    /// Its actions without that prefix.
    actions: Vec<String>,
    resources: Vec<String>,
}

fn policy_statements() -> Vec<Statement> {
    let policy = read_json("deploy/iam-policy.json");
    assert_eq!(policy["Version"], "2012-10-17");
    let list = |value: &Value| -> Vec<String> {
        match value {
            Value::String(one) => vec![one.clone()],
            Value::Array(many) => many.iter().map(|v| v.as_str().expect("text").to_string()).collect(),
            other => panic!("not a string or a list: {other}"),
        }
    };
    policy["Statement"]
        .as_array()
        .expect("Statement")
        .iter()
        .map(|statement| {
            assert_eq!(statement["Effect"], "Allow");
            assert!(statement.get("NotAction").is_none() && statement.get("NotResource").is_none());
            let actions: Vec<(String, String)> = list(&statement["Action"])
                .into_iter()
                .map(|action| {
                    let (service, name) = action.split_once(':').unwrap_or_else(|| panic!("{action}: no service"));
                    assert!(
                        ["logs", "dynamodb", "s3"].contains(&service),
                        "{action}: logboard calls logs, dynamodb and s3 only"
                    );
                    assert!(!name.contains('*') && !name.contains('?'), "a wildcard action: {action}");
                    (service.to_string(), name.to_string())
                })
                .collect();
            let service = actions.first().map(|(service, _)| service.clone()).expect("an action");
            assert!(actions.iter().all(|(s, _)| *s == service), "one service per statement: {actions:?}");
            Statement {
                service,
                actions: actions.into_iter().map(|(_, name)| name).collect(),
                resources: list(&statement["Resource"]),
            }
        })
        .collect()
}

/// (actions, resources) of each statement for `service`; actions without its prefix.
fn statements_of(service: &str) -> Vec<(Vec<String>, Vec<String>)> {
    policy_statements()
        .into_iter()
        .filter(|statement| statement.service == service)
        .map(|statement| (statement.actions, statement.resources))
        .collect()
}

#[test]
fn the_iam_policy_grants_exactly_the_cloudwatch_logs_actions_the_code_calls() {
    let called = cloudwatch_operations_called();
    for expected in [
        "PutLogEvents",
        "CreateLogGroup",
        "CreateLogStream",
        "DescribeLogGroups",
        "FilterLogEvents",
        "PutRetentionPolicy",
    ] {
        assert!(called.contains(expected), "the source scan misses {expected}: {called:?}");
    }
    let granted: BTreeSet<String> = statements_of("logs").into_iter().flat_map(|(actions, _)| actions).collect();
    let expected = called.clone();
    let missing: Vec<&String> = expected.difference(&granted).collect();
    let extra: Vec<&String> = granted.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing from the policy: {missing:?}; granted but not called: {extra:?}"
    );
}

#[test]
fn the_iam_policy_scopes_every_action_but_describe_log_groups_to_the_configured_groups() {
    let config = Config::from_sources(common::SHIPPED_CONFIG, &[]).expect("shipped config");
    let template = &config.cloudwatch.group_template;
    // The groups logboard creates all start with the template's text before its first field.
    let own_prefix = &template[..template.find('{').unwrap_or(template.len())];
    assert!(!own_prefix.is_empty() && own_prefix != "/", "{template}");
    let arn = |group_pattern: &str| format!("arn:aws:logs:<REGION>:<ACCOUNT>:log-group:{group_pattern}");
    let own_groups = arn(&format!("{own_prefix}*"));
    let lambda_groups = arn("/aws/lambda/<FUNCTION_PREFIX>*");
    let mut readable = BTreeSet::new();
    for (actions, resources) in statements_of("logs") {
        if resources.iter().any(|r| r == "*") {
            assert_eq!(resources, ["*"]);
            assert_eq!(actions, ["DescribeLogGroups"], "only DescribeLogGroups may need every resource");
            continue;
        }
        for resource in &resources {
            assert!(resource == &own_groups || resource == &lambda_groups, "{resource} is not a configured prefix");
        }
        let reads = ["FilterLogEvents", "GetLogEvents"];
        let writes = actions.iter().any(|a| !reads.contains(&a.as_str()));
        assert!(!writes || resources == [own_groups.clone()], "{actions:?} may change only logboard's own groups");
        if actions.iter().any(|a| a == "FilterLogEvents") {
            readable.extend(resources);
        }
    }
    assert_eq!(readable, BTreeSet::from([own_groups, lambda_groups]), "reads: the own groups and the Lambda ones");
}

#[test]
fn the_iam_policy_grants_exactly_the_dynamodb_actions_the_running_service_calls() {
    let operations = sdk_operations("aws-sdk-dynamodb");
    assert!(operations.contains("transact_write_items"), "not DynamoDB: {operations:?}");
    let (creation, service) = dynamodb_calls(&operations);
    for expected in ["create_table", "update_time_to_live"] {
        assert!(creation.contains(expected), "the table's creation does not call {expected}: {creation:?}");
    }
    let called = calls_in(&service, &operations);
    for expected in ["get_item", "put_item", "delete_item"] {
        assert!(called.contains(expected), "the source scan misses {expected}: {called:?}");
    }
    let expected = dynamodb_actions(&called, &service);
    let granted: BTreeSet<String> = statements_of("dynamodb").into_iter().flat_map(|(actions, _)| actions).collect();
    let missing: Vec<&String> = expected.difference(&granted).collect();
    let extra: Vec<&String> = granted.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing from the policy: {missing:?}; granted but not called by the running service: {extra:?} \
         (called: {called:?}; only by the table's creation: {creation:?})"
    );
}

/// `LOGBOARD__STATE__TABLE` of the task definition: the table the tasks use.
fn state_table() -> String {
    let task = task_definition();
    let environment = pairs(&container(&task)["environment"], "value");
    let table = environment.iter().find(|(name, _)| *name == "LOGBOARD__STATE__TABLE").map(|(_, value)| *value);
    table.expect("LOGBOARD__STATE__TABLE in the task definition's environment").to_string()
}

#[test]
fn every_dynamodb_statement_is_scoped_to_the_state_table_the_tasks_use() {
    let table = state_table();
    let arn = format!("arn:aws:dynamodb:<REGION>:<ACCOUNT>:table/{table}");
    let statements = statements_of("dynamodb");
    assert!(!statements.is_empty(), "no DynamoDB statement");
    for (actions, resources) in statements {
        assert_eq!(resources, [arn.as_str()], "{actions:?} on more than the state table");
    }
    // The table's ARN covers the table, not its indexes: a query on an index needs its own.
    let (_, service) = dynamodb_calls(&sdk_operations("aws-sdk-dynamodb"));
    assert!(!service.contains(".index_name("), "a query on an index: grant table/{table}/index/NAME too");
}

/// The words of `command`'s option `flag` (up to the next option).
fn option_values<'a>(command: &'a str, flag: &str) -> Vec<&'a str> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let at = words.iter().position(|w| *w == flag).unwrap_or_else(|| panic!("{flag} in `{command}`"));
    words[at + 1..].iter().take_while(|w| !w.starts_with("--")).copied().collect()
}

#[test]
fn the_deploy_readme_creates_the_table_with_the_keys_ttl_and_billing_the_code_uses() {
    let readme = std::fs::read_to_string(repo().join("deploy/README.md")).expect("deploy/README.md");
    let joined = readme.replace("\\\n", " ");
    let command = |name: &str| -> String {
        let prefix = format!("aws dynamodb {name} ");
        let found: Vec<&str> = joined.lines().filter(|line| line.starts_with(&prefix)).collect();
        assert_eq!(found.len(), 1, "one `{prefix}...` in deploy/README.md: {found:?}");
        found[0].to_string()
    };
    // The key and TTL attributes as src/dynamo/mod.rs names them.
    let module = service_code(&dynamo_dir().join("mod.rs"));
    let constant = |name: &str| -> String {
        let pattern = regex::Regex::new(&format!(r#"pub const {name}: &str = "([^"]+)";"#)).expect("regex");
        pattern.captures(&module).unwrap_or_else(|| panic!("const {name} in src/dynamo/mod.rs"))[1].to_string()
    };
    let (pk, sk, expires) = (constant("PK"), constant("SK"), constant("EXPIRES"));
    let table = state_table();

    let create = command("create-table");
    assert_eq!(option_values(&create, "--table-name"), [table.as_str()]);
    assert_eq!(
        option_values(&create, "--attribute-definitions"),
        [format!("AttributeName={pk},AttributeType=S"), format!("AttributeName={sk},AttributeType=S")]
    );
    assert_eq!(
        option_values(&create, "--key-schema"),
        [format!("AttributeName={pk},KeyType=HASH"), format!("AttributeName={sk},KeyType=RANGE")]
    );
    assert!(module.contains("BillingMode::PayPerRequest"), "create-state-table makes an on-demand table");
    assert_eq!(option_values(&create, "--billing-mode"), ["PAY_PER_REQUEST"]);

    let ttl = command("update-time-to-live");
    assert_eq!(option_values(&ttl, "--table-name"), [table.as_str()]);
    assert_eq!(option_values(&ttl, "--time-to-live-specification"), [format!("Enabled=true,AttributeName={expires}")]);
    assert!(
        joined.find("aws dynamodb create-table") < joined.find("aws dynamodb update-time-to-live"),
        "TTL is turned on once the table exists"
    );
}

/// `logboard healthcheck` with the shipped config listening on `listen`: its exit code.
fn healthcheck(listen: &str) -> Option<i32> {
    let config = repo().join("config.toml").display().to_string();
    let output = logboard(&["healthcheck", "--config", &config], &[("LOGBOARD__SERVER__LISTEN", listen)])
        .output()
        .expect("run logboard healthcheck");
    output.status.code()
}

#[test]
fn healthcheck_exits_0_against_a_serving_logboard_and_1_once_it_is_gone() {
    let dir = tempfile::tempdir().expect("dir");
    let server = binary::start_server(dir.path(), &[("RUST_LOG", "warn")], None);
    let address = server.base.trim_start_matches("http://").to_string();
    let port = address.rsplit(':').next().expect("port");
    // The container listens on every address; the probe goes to loopback on the same port.
    assert_eq!(healthcheck(&format!("0.0.0.0:{port}")), Some(0));
    assert_eq!(healthcheck(&address), Some(0));
    drop(server);
    assert_eq!(healthcheck(&address), Some(1));
}

#[test]
fn healthcheck_exits_1_when_nothing_listens() {
    let port = common::free_port();
    assert_eq!(healthcheck(&format!("127.0.0.1:{port}")), Some(1));
}

#[test]
fn healthcheck_exits_1_when_healthz_answers_other_than_200_or_not_http() {
    for answer in ["HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n", "SSH-2.0-OpenSSH_9.6\r\n"] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("addr").to_string();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let mut request = [0u8; 1024];
            let n = stream.read(&mut request).expect("read the request");
            stream.write_all(answer.as_bytes()).expect("answer");
            String::from_utf8_lossy(&request[..n]).into_owned()
        });
        assert_eq!(healthcheck(&address), Some(1), "{answer:?}");
        let request = server.join().expect("server thread");
        assert!(request.starts_with("GET /healthz HTTP/1.1\r\n"), "{request}");
    }
}

/// `src/sourcemaps/s3.rs`: the source maps' store in S3, the one file that calls S3.
fn s3_file() -> PathBuf {
    repo().join("src/sourcemaps/s3.rs")
}

/// The IAM action an S3 call needs, and whether it is granted on the bucket (else on its
/// objects): HeadObject needs GetObject, ListObjectsV2 needs ListBucket on the bucket.
fn s3_action(operation: &str) -> (String, bool) {
    match operation {
        "head_object" => ("GetObject".into(), false),
        "list_objects_v2" => ("ListBucket".into(), true),
        other => (pascal_case(other), false),
    }
}

#[test]
fn the_iam_policy_grants_exactly_the_s3_actions_of_the_source_maps_store_on_its_bucket() {
    let operations = sdk_operations("aws-sdk-s3");
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    for file in files.iter().filter(|file| **file != s3_file()) {
        assert!(!service_code(file).contains("aws_sdk_s3"), "{}: S3 is used in s3.rs only", file.display());
    }
    let called = calls_in(&service_code(&s3_file()), &operations);
    for expected in ["put_object", "get_object", "head_object", "list_objects_v2", "delete_object"] {
        assert!(called.contains(expected), "the source scan misses {expected}: {called:?}");
    }
    let task = task_definition();
    let environment = pairs(&container(&task)["environment"], "value");
    let bucket = environment
        .iter()
        .find(|(name, _)| *name == "LOGBOARD__SOURCEMAPS__S3_BUCKET")
        .map(|(_, value)| format!("arn:aws:s3:::{value}"))
        .expect("LOGBOARD__SOURCEMAPS__S3_BUCKET in the task definition's environment");
    let expected: BTreeSet<(String, bool)> = called.iter().map(|operation| s3_action(operation)).collect();
    let mut granted = BTreeSet::new();
    for (actions, resources) in statements_of("s3") {
        let on_bucket = resources == [bucket.clone()];
        assert!(on_bucket || resources == [format!("{bucket}/*")], "{resources:?}: the bucket or its objects only");
        granted.extend(actions.into_iter().map(|action| (action, on_bucket)));
    }
    assert_eq!(granted, expected, "(action, on the bucket rather than its objects)");
}
