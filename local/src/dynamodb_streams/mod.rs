//! DynamoDB Streams where the gate must know more than moto tells
//! (docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Operations_Amazon_DynamoDB_Streams.html):
//! - [`shard_iterators`]: which stream each iterator reads, so `GetRecords` is authorised on it.

pub mod shard_iterators;
