//! The query strings of SPEC §4, parsed into types by pure functions: the
//! run list's ([`parse_list_query`]) and a metric's ([`parse_metric_query`]).
//!
//! Each pair is decoded once (`application/x-www-form-urlencoded`, see
//! [`query_pairs`]); an unknown key is ignored; a repeated key is taken
//! again (the last wins, but `fields`, which add up). Every refusal is a
//! [`QueryError`], whose message is part of the API (400 `bad_query`).
//!
//! ```text
//! limit=50&sort=metrics.loss&order=desc&fields=params.lr,metrics.loss
//! ```

use lab_core::filter::{Filter, FilterError};
use lab_core::formats::{Format, XAxis};
use lab_core::list::{ListQuery, MAX_FIELDS, MAX_PAGE, Sort};
use lab_core::series::SeriesQuery;

use crate::decode::query_pairs;

/// A query string refused: 400 `bad_query` with this message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QueryError(pub(crate) &'static str);

/// A requested extra field of the run list: `params.KEY` or `metrics.NAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    /// `params.KEY`: the param `KEY` of each run.
    Param(String),
    /// `metrics.NAME`: the last value of the metric `NAME` of each run.
    Metric(String),
}

/// Default and largest `points` of a metrics request.
const DEFAULT_POINTS: usize = 1000;
const MAX_POINTS: usize = 10_000;

/// What `?format=` takes: every [`Format::ALL`], in its order (a unit test
/// holds the two together).
const BAD_FORMAT: &str = "format must be one of mlflow, wandb, trackio, sacred, raytune, huggingface, ultralytics, dvclive, sb3, lightning, tensorboard, keras, hydra, lab";

/// `GET /api/runs?limit=&cursor=&q=&tag=&has_video=&format=&filter=&sort=&order=&fields=`:
/// which runs, in which order, which page, and which extra fields.
pub(crate) fn parse_list_query(query: &str) -> Result<(ListQuery, Vec<Field>), ListError> {
    let (mut wanted, fields, filter) = parse_list_pairs(query)?;
    if let Some(expr) = filter {
        wanted.filter = Some(Filter::parse(&expr).map_err(ListError::Filter)?);
    }
    Ok((wanted, fields))
}

/// A list query refused: a malformed query (400 `bad_query`) or filter
/// expression (400 `bad_filter`, with the character position).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ListError {
    /// Any other key's value.
    Query(QueryError),
    /// `filter=`.
    Filter(FilterError),
}

impl From<QueryError> for ListError {
    fn from(e: QueryError) -> Self {
        ListError::Query(e)
    }
}

/// [`parse_list_query`] but for the filter, given back unparsed (a
/// refusal of another key wins over the filter's).
#[allow(clippy::type_complexity)]
fn parse_list_pairs(query: &str) -> Result<(ListQuery, Vec<Field>, Option<String>), QueryError> {
    let mut filter = None;
    let pairs = query_pairs(query).ok_or(QueryError("malformed query string"))?;
    let mut wanted = ListQuery::default();
    let mut fields: Vec<Field> = Vec::new();
    for (key, value) in pairs {
        match key.as_str() {
            "limit" => {
                wanted.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or(QueryError("limit must be a number from 1 to 500"))?;
            }
            "cursor" if !value.is_empty() => {
                wanted.offset = value
                    .parse::<usize>()
                    .map_err(|_| QueryError("cursor must be a next_cursor from a previous page"))?;
            }
            "filter" if !value.is_empty() => filter = Some(value),
            "q" if !value.is_empty() => wanted.text = Some(value.to_lowercase()),
            "tag" if !value.is_empty() => wanted.tag = Some(value),
            "experiment" if !value.is_empty() => wanted.experiment = Some(value),
            "format" if !value.is_empty() => {
                wanted.format = Some(Format::parse(&value).ok_or(QueryError(BAD_FORMAT))?);
            }
            "has_video" => {
                wanted.has_video = Some(match value.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(QueryError("has_video must be true or false")),
                });
            }
            "sort" => {
                wanted.sort = match value.as_str() {
                    "id" => Sort::Id,
                    "name" => Sort::Name,
                    "created" => Sort::Created,
                    "imported" => Sort::Imported,
                    "format" => Sort::Format,
                    "status" => Sort::Status,
                    "experiment" => Sort::Experiment,
                    other => match (
                        other.strip_prefix("params."),
                        other.strip_prefix("metrics."),
                    ) {
                        (Some(k), _) if !k.is_empty() => Sort::Param(k.to_owned()),
                        (_, Some(k)) if !k.is_empty() => Sort::Metric(k.to_owned()),
                        _ => {
                            return Err(QueryError(
                                "sort must be id, name, created, imported, format, status, experiment, params.KEY or metrics.NAME",
                            ));
                        }
                    },
                };
            }
            "order" => {
                wanted.descending = match value.as_str() {
                    "asc" => false,
                    "desc" => true,
                    _ => return Err(QueryError("order must be asc or desc")),
                };
            }
            "fields" => {
                for field in value.split(',').filter(|f| !f.is_empty()) {
                    let parsed = match (
                        field.strip_prefix("params."),
                        field.strip_prefix("metrics."),
                    ) {
                        (Some(k), _) if !k.is_empty() => Field::Param(k.to_owned()),
                        (_, Some(k)) if !k.is_empty() => Field::Metric(k.to_owned()),
                        _ => {
                            return Err(QueryError(
                                "fields are params.KEY or metrics.NAME, comma-separated",
                            ));
                        }
                    };
                    fields.push(parsed);
                }
                if fields.len() > MAX_FIELDS {
                    return Err(QueryError("at most 32 fields"));
                }
            }
            _ => {}
        }
    }
    Ok((wanted, fields, filter))
}

/// `GET /api/runs/{id}/metrics/{name}?points=&from=&to=&x=`: how many
/// buckets, which part of the series, along which x.
pub(crate) fn parse_metric_query(query: &str) -> Result<SeriesQuery, QueryError> {
    let pairs = query_pairs(query).ok_or(QueryError("malformed query string"))?;
    let mut wanted = SeriesQuery {
        points: DEFAULT_POINTS,
        from: None,
        to: None,
        axis: XAxis::Step,
    };
    let number = |v: &str, what: &'static str| {
        v.parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or(QueryError(what))
    };
    for (key, value) in pairs {
        match key.as_str() {
            "points" => {
                wanted.points = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_POINTS).contains(n))
                    .ok_or(QueryError("points must be a number from 1 to 10000"))?;
            }
            "from" if !value.is_empty() => {
                wanted.from = Some(number(&value, "from must be a number")?);
            }
            "to" if !value.is_empty() => wanted.to = Some(number(&value, "to must be a number")?),
            "x" => {
                wanted.axis = match value.as_str() {
                    "step" => XAxis::Step,
                    "wall" => XAxis::Wall,
                    _ => return Err(QueryError("x must be step or wall")),
                };
            }
            _ => {}
        }
    }
    Ok(wanted)
}

/// `GET /api/runs/{id}/histograms/{name}?points=`: how many steps at
/// most (the metric route's default and bounds).
pub(crate) fn parse_histogram_query(query: &str) -> Result<usize, QueryError> {
    let pairs = query_pairs(query).ok_or(QueryError("malformed query string"))?;
    let mut points = DEFAULT_POINTS;
    for (key, value) in pairs {
        if key == "points" {
            points = value
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_POINTS).contains(n))
                .ok_or(QueryError("points must be a number from 1 to 10000"))?;
        }
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a list query parses into, or its error's message.
    type Listed<'a> = Result<(ListQuery, Vec<Field>), &'a str>;

    /// The list query of `query`, or its error's message.
    fn check_list(query: &str, expected: Listed<'_>) {
        let parsed = parse_list_query(query).map_err(|e| match e {
            ListError::Query(QueryError(message)) => message,
            ListError::Filter(_) => "bad filter",
        });
        assert_eq!(parsed, expected, "{query:?}");
    }

    #[test]
    fn the_list_query_parses_into_a_list_query_and_fields() {
        let default = ListQuery::default;
        let with = |change: &dyn Fn(&mut ListQuery)| {
            let mut q = ListQuery::default();
            change(&mut q);
            q
        };
        let many_fields = (0..33)
            .map(|i| format!("params.p{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let many_fields = format!("fields={many_fields}");
        let thirty_two: Vec<Field> = (0..32).map(|i| Field::Param(format!("p{i}"))).collect();
        let thirty_two_query = format!(
            "fields={}",
            (0..32)
                .map(|i| format!("params.p{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let table: Vec<(&str, Listed<'_>)> = vec![
            ("", Ok((default(), vec![]))),
            ("&&", Ok((default(), vec![]))),
            ("unknown=1&other", Ok((default(), vec![]))),
            ("%", Err("malformed query string")),
            ("q=%zz", Err("malformed query string")),
            ("q=%ff", Err("malformed query string")),
            // limit
            ("limit=1", Ok((with(&|q| q.limit = 1), vec![]))),
            ("limit=500", Ok((with(&|q| q.limit = 500), vec![]))),
            ("limit=0", Err("limit must be a number from 1 to 500")),
            ("limit=501", Err("limit must be a number from 1 to 500")),
            ("limit=", Err("limit must be a number from 1 to 500")),
            ("limit=-1", Err("limit must be a number from 1 to 500")),
            ("limit=ten", Err("limit must be a number from 1 to 500")),
            ("limit=10&limit=20", Ok((with(&|q| q.limit = 20), vec![]))),
            // cursor
            ("cursor=200", Ok((with(&|q| q.offset = 200), vec![]))),
            ("cursor=", Ok((default(), vec![]))),
            (
                "cursor=abc",
                Err("cursor must be a next_cursor from a previous page"),
            ),
            (
                "cursor=-1",
                Err("cursor must be a next_cursor from a previous page"),
            ),
            // q, tag
            (
                "q=Hello+W%C3%96RLD",
                Ok((with(&|q| q.text = Some("hello wörld".into())), vec![])),
            ),
            ("q=", Ok((default(), vec![]))),
            (
                "tag=Best%20Run",
                Ok((with(&|q| q.tag = Some("Best Run".into())), vec![])),
            ),
            ("tag=", Ok((default(), vec![]))),
            (
                "experiment=mlflow%3A%2Fm%2F1",
                Ok((with(&|q| q.experiment = Some("mlflow:/m/1".into())), vec![])),
            ),
            ("experiment=", Ok((default(), vec![]))),
            // format
            (
                "format=tensorboard",
                Ok((with(&|q| q.format = Some(Format::Tensorboard)), vec![])),
            ),
            ("format=", Ok((default(), vec![]))),
            ("format=TensorBoard", Err(BAD_FORMAT)),
            // has_video
            (
                "has_video=true",
                Ok((with(&|q| q.has_video = Some(true)), vec![])),
            ),
            (
                "has_video=1",
                Ok((with(&|q| q.has_video = Some(true)), vec![])),
            ),
            (
                "has_video=false",
                Ok((with(&|q| q.has_video = Some(false)), vec![])),
            ),
            (
                "has_video=0",
                Ok((with(&|q| q.has_video = Some(false)), vec![])),
            ),
            ("has_video=", Err("has_video must be true or false")),
            ("has_video=yes", Err("has_video must be true or false")),
            // sort, order
            ("sort=name", Ok((with(&|q| q.sort = Sort::Name), vec![]))),
            (
                "sort=created",
                Ok((with(&|q| q.sort = Sort::Created), vec![])),
            ),
            (
                "sort=imported",
                Ok((with(&|q| q.sort = Sort::Imported), vec![])),
            ),
            (
                "sort=format",
                Ok((with(&|q| q.sort = Sort::Format), vec![])),
            ),
            (
                "sort=status",
                Ok((with(&|q| q.sort = Sort::Status), vec![])),
            ),
            (
                "sort=experiment",
                Ok((with(&|q| q.sort = Sort::Experiment), vec![])),
            ),
            ("sort=id", Ok((default(), vec![]))),
            (
                "sort=params.lr",
                Ok((with(&|q| q.sort = Sort::Param("lr".into())), vec![])),
            ),
            (
                "sort=metrics.train%2Floss",
                Ok((
                    with(&|q| q.sort = Sort::Metric("train/loss".into())),
                    vec![],
                )),
            ),
            (
                "sort=params.",
                Err(
                    "sort must be id, name, created, imported, format, status, experiment, params.KEY or metrics.NAME",
                ),
            ),
            (
                "sort=",
                Err(
                    "sort must be id, name, created, imported, format, status, experiment, params.KEY or metrics.NAME",
                ),
            ),
            ("order=desc", Ok((with(&|q| q.descending = true), vec![]))),
            ("order=asc", Ok((default(), vec![]))),
            ("order=DESC", Err("order must be asc or desc")),
            ("order=", Err("order must be asc or desc")),
            // fields
            (
                "fields=params.lr,metrics.loss",
                Ok((
                    default(),
                    vec![Field::Param("lr".into()), Field::Metric("loss".into())],
                )),
            ),
            (
                "fields=params.lr&fields=,metrics.loss,",
                Ok((
                    default(),
                    vec![Field::Param("lr".into()), Field::Metric("loss".into())],
                )),
            ),
            ("fields=", Ok((default(), vec![]))),
            (
                "fields=lr",
                Err("fields are params.KEY or metrics.NAME, comma-separated"),
            ),
            (
                "fields=metrics.",
                Err("fields are params.KEY or metrics.NAME, comma-separated"),
            ),
            (thirty_two_query.as_str(), Ok((default(), thirty_two))),
            (many_fields.as_str(), Err("at most 32 fields")),
            // The first refusal wins.
            (
                "limit=0&order=up",
                Err("limit must be a number from 1 to 500"),
            ),
            (
                "limit=50&sort=metrics.loss&order=desc&q=Mnist&tag=best&has_video=0&format=lab&cursor=100&experiment=lab%3Ax",
                Ok((
                    ListQuery {
                        limit: 50,
                        offset: 100,
                        text: Some("mnist".into()),
                        tag: Some("best".into()),
                        has_video: Some(false),
                        format: Some(Format::Lab),
                        experiment: Some("lab:x".into()),
                        sort: Sort::Metric("loss".into()),
                        descending: true,
                        filter: None,
                    },
                    vec![],
                )),
            ),
            (
                "filter=status%20%3D%20%27finished%27",
                Ok((
                    with(&|q| q.filter = Some(Filter::parse("status = 'finished'").unwrap())),
                    vec![],
                )),
            ),
            ("filter=", Ok((default(), vec![]))),
            ("filter=status%20%3D", Err("bad filter")),
            (
                "filter=status%20%3D&limit=0",
                Err("limit must be a number from 1 to 500"),
            ),
        ];
        for (query, expected) in table {
            check_list(query, expected);
        }
    }

    /// The metric query of `query`, or its error's message.
    fn check_metric(query: &str, expected: Result<SeriesQuery, &str>) {
        let parsed = parse_metric_query(query).map_err(|QueryError(message)| message);
        assert_eq!(parsed, expected, "{query:?}");
    }

    #[test]
    fn the_metric_query_parses_into_a_series_query() {
        let default = SeriesQuery {
            points: 1000,
            from: None,
            to: None,
            axis: XAxis::Step,
        };
        let with = |change: &dyn Fn(&mut SeriesQuery)| {
            let mut q = default;
            change(&mut q);
            q
        };
        let table: &[(&str, Result<SeriesQuery, &str>)] = &[
            ("", Ok(default)),
            ("unknown=1&&y=2", Ok(default)),
            ("%", Err("malformed query string")),
            ("x=%c3", Err("malformed query string")),
            ("points=1", Ok(with(&|q| q.points = 1))),
            ("points=10000", Ok(with(&|q| q.points = 10_000))),
            ("points=0", Err("points must be a number from 1 to 10000")),
            (
                "points=10001",
                Err("points must be a number from 1 to 10000"),
            ),
            ("points=", Err("points must be a number from 1 to 10000")),
            ("points=1e3", Err("points must be a number from 1 to 10000")),
            ("from=10", Ok(with(&|q| q.from = Some(10.0)))),
            ("from=-2.5e3", Ok(with(&|q| q.from = Some(-2500.0)))),
            ("from=", Ok(default)),
            ("from=NaN", Err("from must be a number")),
            ("from=inf", Err("from must be a number")),
            ("from=ten", Err("from must be a number")),
            ("to=1.5", Ok(with(&|q| q.to = Some(1.5)))),
            ("to=", Ok(default)),
            ("to=-inf", Err("to must be a number")),
            ("x=step", Ok(default)),
            ("x=wall", Ok(with(&|q| q.axis = XAxis::Wall))),
            ("x=", Err("x must be step or wall")),
            ("x=Wall", Err("x must be step or wall")),
            (
                "points=50&from=1&to=9&x=wall",
                Ok(SeriesQuery {
                    points: 50,
                    from: Some(1.0),
                    to: Some(9.0),
                    axis: XAxis::Wall,
                }),
            ),
            (
                "points=0&x=up",
                Err("points must be a number from 1 to 10000"),
            ),
        ];
        for (query, expected) in table {
            check_metric(query, *expected);
        }
    }

    #[test]
    fn a_bad_format_names_every_format() {
        let all: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(
            BAD_FORMAT,
            format!("format must be one of {}", all.join(", "))
        );
    }

    #[test]
    fn the_histogram_query_takes_points_within_the_metric_bounds() {
        let table: &[(&str, Result<usize, &str>)] = &[
            ("", Ok(DEFAULT_POINTS)),
            ("points=1", Ok(1)),
            ("points=10000", Ok(10_000)),
            ("points=50&x=wall", Ok(50)),
            ("points=0", Err("points must be a number from 1 to 10000")),
            (
                "points=10001",
                Err("points must be a number from 1 to 10000"),
            ),
            ("points=-1", Err("points must be a number from 1 to 10000")),
            ("points=1e3", Err("points must be a number from 1 to 10000")),
            ("points=%zz", Err("malformed query string")),
        ];
        for (query, expected) in table {
            let parsed = parse_histogram_query(query).map_err(|QueryError(m)| m);
            assert_eq!(parsed, *expected, "{query:?}");
        }
    }
}
