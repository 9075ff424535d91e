using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Matchlock.Core;

/// <summary>
/// The few statement helpers both SQLite stores (images, VM state) use: parameterised commands
/// (never string-built SQL with values), and the UTC round-trip time format they store.
/// </summary>
internal static class SqliteStatements
{
    /// <summary>
    /// Opens (creating) a store database in WAL mode and brings its schema to
    /// <c>migrations.Count</c>, applying the missing steps in one IMMEDIATE transaction so two
    /// first opens at once migrate once. <paramref name="migrations"/>[i] takes version i to i+1:
    /// append, never edit. <paramref name="error"/> turns a failure (message, cause) into the
    /// store's own exception; <paramref name="description"/> names the database in it.
    /// </summary>
    public static SqliteConnection OpenMigrated(
        string path, IReadOnlyList<string> migrations, string description, Func<string, Exception?, Exception> error)
    {
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
            DefaultTimeout = 60, // seconds a statement retries while another process writes
        };
        var connection = new SqliteConnection(builder.ToString());
        try
        {
            connection.Open();
            connection.Execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=60000;", null);
            // Up to date (every open but the first): no transaction, so readers never queue for the write lock.
            if (UserVersion(connection, null) == migrations.Count)
            {
                return connection;
            }

            using var tx = connection.BeginTransaction(deferred: false);
            var current = UserVersion(connection, tx); // again, under the lock: another process may have migrated meanwhile
            if (current > migrations.Count)
            {
                throw error(
                    $"{description} {path} was written by a newer matchlock (schema {current}, this one knows {migrations.Count}); upgrade matchlock", null);
            }

            for (var v = current; v < migrations.Count; v++)
            {
                connection.Execute(migrations[v], tx);
            }

            connection.Execute($"PRAGMA user_version={migrations.Count}", tx);
            tx.Commit();
            return connection;
        }
        catch (SqliteException e)
        {
            connection.Dispose();
            throw error($"cannot open {description} {path}: {e.Message}", e);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private static int UserVersion(SqliteConnection connection, SqliteTransaction? tx)
    {
        using var version = connection.Command("PRAGMA user_version", tx);
        return Convert.ToInt32(version.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    public static SqliteCommand Command(this SqliteConnection connection, string sql, SqliteTransaction? tx, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = tx;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return command;
    }

    public static void Execute(this SqliteConnection connection, string sql, SqliteTransaction? tx, params (string Name, object? Value)[] parameters)
    {
        using var command = connection.Command(sql, tx, parameters);
        command.ExecuteNonQuery();
    }

    public static string FormatTime(DateTimeOffset time) => time.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

    public static DateTimeOffset ParseTime(string text) =>
        DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
}
